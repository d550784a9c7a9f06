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
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles this command with a version stamped in, the way
// the Dockerfile does.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "sandbox-runtime")
	build := exec.Command(goTool, "build", "-trimpath",
		"-ldflags", "-X github.com/agentsandbox/agent-sandbox/pkg/version.gitVersion=v0.0.0-test",
		"-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// logAddress matches the "Serving" log line's address.
var logAddress = regexp.MustCompile(`"Serving".* address="(127\.0\.0\.1:\d+)"`)

// startBinary runs the binary on a kernel-chosen loopback port and
// returns its base URL once it logs the address it serves on. The
// process is killed at cleanup if a test left it running.
func startBinary(t *testing.T, bin, baseDir string) (*exec.Cmd, string, func() string) {
	t.Helper()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--base-dir", baseDir, "-v", "2")
	cmd.Env = append(os.Environ(), "SANDBOX_LISTEN=0.0.0.0:1") // the flag wins over the env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var mu sync.Mutex
	var logs strings.Builder
	addr := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := logAddress.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait() // reaps the process; cmd.ProcessState is set after
	}()
	getLogs := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	select {
	case a := <-addr:
		return cmd, "http://" + a, func() string { <-exited; return getLogs() }
	case <-exited:
		t.Fatalf("binary exited before serving:\n%s", getLogs())
	case <-time.After(30 * time.Second):
		t.Fatalf("binary did not log its address:\n%s", getLogs())
	}
	return nil, "", nil
}

func TestVersionFlag(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "sandbox-runtime, version v0.0.0-test") {
		t.Errorf("--version printed %q", out)
	}
}

func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	base := filepath.Join(t.TempDir(), "app")
	cmd, url, waitLogs := startBinary(t, bin, base)
	client := &http.Client{Timeout: 30 * time.Second}

	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strconv.Itoa(resp.StatusCode) + " " + string(b)
	}
	if got, want := get("/"), `200 {"status":"ok","message":"Sandbox Runtime is active."}`; got != want {
		t.Errorf("GET / = %s, want %s", got, want)
	}

	resp, err := client.Post(url+"/execute", "application/json", strings.NewReader(`{"command":"sh -c 'pwd; echo $0'"}`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Stdout   string `json:"stdout"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res.Stdout != base+"\nsh\n" || res.ExitCode != 0 {
		t.Errorf("execute = %+v, want the base dir as working directory", res)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "notes/today.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	resp, err = client.Post(url+"/upload", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := get("/download/notes%2Ftoday.txt"), "200 hello"; got != want {
		t.Errorf("download = %s, want %s", got, want)
	}
	if got, want := get("/exists/%2E%2E"), `403 {"message":"Access denied"}`; got != want {
		t.Errorf("exists .. = %s, want %s", got, want)
	}

	// A long-running streamed command: SIGTERM must kill it and still
	// let its request end with the error line.
	resp, err = client.Post(url+"/execute/stream", "application/json",
		strings.NewReader(`{"command":"sh -c 'echo $$ > leader.pid; echo ready; exec sleep 60'"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != `{"type":"stdout","data":"ready\n"}` {
		t.Fatalf("first stream line = %q", lines.Text())
	}
	pidBytes, err := os.ReadFile(filepath.Join(base, "leader.pid"))
	if err != nil {
		t.Fatal(err)
	}
	leader, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() || lines.Text() != `{"type":"error","message":"Failed to execute command: the runtime is shutting down"}` {
		t.Errorf("last stream line = %q", lines.Text())
	}
	done := make(chan string)
	go func() { done <- waitLogs() }()
	select {
	case logs := <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d after SIGTERM; logs:\n%s", code, logs)
		}
		if !strings.Contains(logs, `"Stopped"`) {
			t.Errorf("no clean stop in logs:\n%s", logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("binary still running 20s after SIGTERM")
	}
	if err := syscall.Kill(leader, 0); err == nil {
		if stat, _ := os.ReadFile("/proc/" + strconv.Itoa(leader) + "/stat"); !strings.Contains(string(stat), ") Z") {
			_ = syscall.Kill(leader, syscall.SIGKILL)
			t.Errorf("command %d survived the runtime's shutdown", leader)
		}
	}
}
