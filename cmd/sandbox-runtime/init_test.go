/*
Copyright The Agent Sandbox Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unshareArgs returns the unshare(1) arguments that run a command as PID 1
// of a new PID namespace here, or skips the test.
func unshareArgs(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	for _, args := range [][]string{
		{"--user", "--map-root-user", "--pid", "--fork", "--kill-child"},
		{"--pid", "--fork", "--kill-child"},
	} {
		if exec.Command("unshare", append(args, "true")...).Run() == nil {
			return args
		}
	}
	t.Skip("cannot create a PID namespace here")
	return nil
}

// procTree maps every visible pid to its parent and its state letter.
func procTree(t *testing.T) (parent map[int]int, state map[int]string) {
	t.Helper()
	parent, state = map[int]int{}, map[int]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		pid, _ := strconv.Atoi(strings.Fields(s)[0])
		ppid, _ := strconv.Atoi(f[1])
		parent[pid], state[pid] = ppid, f[0]
	}
	return parent, state
}

// TestReapsOrphansAsPID1: in a container the runtime is PID 1, so every
// process orphaned by a command (a background child of a shell that
// exited, a group member outliving its killed leader) becomes its child.
// Unreaped, they stay zombies and use up the pod's PID limit. Run as
// PID 1, the binary must reap them, and still shut down cleanly on
// SIGTERM with the server's exit status.
func TestReapsOrphansAsPID1(t *testing.T) {
	args := unshareArgs(t)
	bin := buildBinary(t)
	cmd := exec.Command("unshare", append(args, bin, "--listen", "127.0.0.1:0", "--base-dir", t.TempDir(), "-v", "2")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := logAddress.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("exited before serving: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("did not serve")
	}

	for range 3 {
		resp, err := http.Post(base+"/execute", "application/json", strings.NewReader(`{"command":"sh -c 'sleep 0.1 & exit 0'"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// The namespace's PID 1 is unshare's only child.
	var pid1 int
	zombies := -1
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		parent, state := procTree(t)
		pid1 = 0
		for pid, pp := range parent {
			if pp == cmd.Process.Pid {
				pid1 = pid
			}
		}
		zombies = 0
		for pid, st := range state {
			for p := parent[pid]; p != 0 && p != 1; p = parent[p] {
				if p == pid1 && st == "Z" {
					zombies++
				}
			}
		}
		if zombies == 0 && pid1 != 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if pid1 == 0 || zombies != 0 {
		t.Errorf("PID 1 = %d; %d zombie processes in the sandbox's PID namespace, want 0", pid1, zombies)
	}

	if pid1 != 0 {
		_ = syscall.Kill(pid1, syscall.SIGTERM)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not exit after SIGTERM to PID 1\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"Stopped"`) {
		t.Errorf("the server did not shut down gracefully:\n%s", logs.String())
	}
}
