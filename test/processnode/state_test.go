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

package processnode

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
)

const (
	uidA = types.UID("0a8d7e5c-1111-4222-8333-944455556666")
	uidB = types.UID("0a8d7e5c-1111-4222-8333-944455557777")
)

func TestStoreRecordsSurviveReopening(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &record{
		UID: uidA, Namespace: "ns", Name: "box", Node: "process-node-0", IP: "127.100.0.1", Port: 8888,
		Process:   &procIdentity{PID: 4242, StartTicks: 99, BootID: "boot"},
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Restarts: 2,
		LastExit: &exitInfo{ExitCode: 137, Signal: 9, Reason: "Error", FinishedAt: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		Healthy:  true,
	}
	if err := s.save(want); err != nil {
		t.Fatal(err)
	}
	want.Restarts = 3 // a second save replaces the first
	if err := s.save(want); err != nil {
		t.Fatal(err)
	}
	// The lock keeps a second node off the directory while the first has it.
	if _, err := openStore(dir); err == nil {
		t.Fatal("a second store opened a locked state directory")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s, err = openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.close() }() // a test store in a temporary directory
	got, broken, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*record{want}, got); diff != "" {
		t.Errorf("records (-want,+got):\n%s", diff)
	}
	if len(broken) != 0 {
		t.Errorf("broken %v, want none", broken)
	}
}

func TestStoreLoadSortsOutWhatItCannotTrust(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.close() }() // a test store in a temporary directory
	pods := filepath.Join(dir, podsDir)
	// A directory left by a crash before its record was written.
	if err := os.MkdirAll(filepath.Join(pods, string(uidA)), 0o700); err != nil {
		t.Fatal(err)
	}
	// A record that claims another Pod's UID.
	if err := os.MkdirAll(filepath.Join(pods, string(uidB)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pods, string(uidB), recordFile), []byte(`{"uid":"`+string(uidA)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not a UID: not the node's, left alone.
	if err := os.MkdirAll(filepath.Join(pods, "..notes"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, broken, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("loaded %d records, want none", len(got))
	}
	slices.Sort(broken) // directory order
	if diff := cmp.Diff([]types.UID{uidA, uidB}, broken); diff != "" {
		t.Errorf("broken (-want,+got):\n%s", diff)
	}
}

// TestRemovePodNeverFollowsSymlinks: a command run in a Pod can plant
// symlinks in its directory (or make the directory itself one); removing
// the Pod removes the links, never what they point to.
func TestRemovePodNeverFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.close() }() // a test store in a temporary directory
	base := filepath.Join(dir, podsDir, string(uidA), "rootfs", "app")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	// The Pod directory itself a symlink to the outside.
	if err := os.Symlink(outside, filepath.Join(dir, podsDir, string(uidB))); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []types.UID{uidA, uidB} {
		if err := s.removePod(uid); err != nil {
			t.Fatalf("removePod(%s): %v", uid, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, podsDir, string(uid))); !os.IsNotExist(err) {
			t.Errorf("pod directory %s still there: %v", uid, err)
		}
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep" {
		t.Fatalf("the file outside the state directory was touched: %q, %v", b, err)
	}
	for _, bad := range []types.UID{"../x", "", "a/b", ".."} {
		if err := s.removePod(bad); err == nil {
			t.Errorf("removePod(%q) accepted a UID that is a path", bad)
		}
	}
}

// startSession runs a shell leading a new session that starts a
// background child and waits for it: a runtime with a command running.
func startSession(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd
}

func TestSessionIsKilledWholeAndOnlyWhenItIsOurs(t *testing.T) {
	cmd := startSession(t)
	id, err := identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !id.alive() {
		t.Fatal("a running process is not alive")
	}
	var members []int
	if !waitUntil(10*time.Second, func() bool {
		members, err = id.sessionMembers()
		return err == nil && len(members) == 2
	}) {
		t.Fatalf("session members %v (%v), want the shell and its sleep", members, err)
	}

	// The same PID with another start time is another process: neither
	// it nor its session is ours.
	impostor := id
	impostor.StartTicks++
	if impostor.alive() {
		t.Error("a process with another start time counts as alive")
	}
	if m, _ := impostor.sessionMembers(); len(m) != 0 {
		t.Errorf("another process's session has members %v", m)
	}
	if err := impostor.killSession(); err != nil {
		t.Fatal(err)
	}
	if err := impostor.signalLeader(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !id.alive() {
		t.Fatal("signalling an impostor identity killed the real process")
	}
	if other := (procIdentity{PID: id.PID, StartTicks: id.StartTicks, BootID: "another boot"}); other.alive() {
		t.Error("a record of another boot counts as alive")
	}

	if err := id.killSession(); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool {
		m, err := id.sessionMembers()
		return err == nil && len(m) == 0 && !id.alive()
	}) {
		t.Fatal("session members survived SIGKILL")
	}
	for _, pid := range members {
		if st, err := readProcStat(pid); err == nil && st.state != 'Z' && st.sid == id.PID {
			t.Errorf("member %d still runs", pid)
		}
	}
}
