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

package localcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestStopDirStopsExactlyTheRecordedProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := t.TempDir()
	// A detached process, as cluster-up starts them; record it under the
	// etcd slot so StopDir finds it.
	p, err := startProcess(dir, etcdName, sleep, []string{"300"}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(time.Second) })

	// A bystander started by someone else must survive.
	bystander := exec.Command(sleep, "300")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _, _ = bystander.Process.Wait() })

	rec, err := readProcess(dir, etcdName)
	if err != nil {
		t.Fatal(err)
	}
	if rec.pid != p.pid || !rec.running() {
		t.Fatalf("record pid %d running %v; want pid %d running", rec.pid, rec.running(), p.pid)
	}
	if err := StopDir(dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	if rec.running() {
		t.Errorf("pid %d still running after StopDir", p.pid)
	}
	if _, err := os.Stat(rec.pidFile(dir)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if err := bystander.Process.Signal(syscallZero); err != nil {
		t.Errorf("bystander process was signalled: %v", err)
	}
}

func TestRecycledPIDIsNeverSignalled(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale pid file whose PID now belongs to this test process, which
	// runs a different binary than the one recorded.
	stale := strconv.Itoa(os.Getpid()) + "\n/nonexistent/kube-apiserver\n"
	if err := os.WriteFile(filepath.Join(dir, "pids", apiServerName+".pid"), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := readProcess(dir, apiServerName)
	if err != nil {
		t.Fatal(err)
	}
	if rec.running() {
		t.Fatal("a PID running another binary counts as the recorded process")
	}
	// Would kill this test binary if the guard failed.
	if err := StopDir(dir, t.Logf); err != nil {
		t.Fatal(err)
	}
}

// syscallZero is signal 0: delivery checks that the process exists.
var syscallZero = syscall.Signal(0)

func TestKillAndRelaunchKeepTheCommandLine(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := t.TempDir()
	first, err := StartDetached(dir, "component", sleep, "300", "301")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopDir(dir, t.Logf) })
	if _, err := Relaunch(dir, "component"); err == nil {
		t.Fatal("Relaunch started a second copy while the first still runs")
	}
	killed, err := Kill(dir, "component", 5*time.Second)
	if err != nil || !killed {
		t.Fatalf("Kill: killed %v, err %v", killed, err)
	}
	if Running(dir, "component") {
		t.Fatal("still running after Kill")
	}
	// The killed child was reaped: no zombie is left under its PID.
	if _, err := os.Stat("/proc/" + strconv.Itoa(first)); !os.IsNotExist(err) {
		t.Errorf("pid %d still in /proc after Kill (zombie?): %v", first, err)
	}
	second, err := Relaunch(dir, "component")
	if err != nil {
		t.Fatal(err)
	}
	if second == first || !Running(dir, "component") {
		t.Fatalf("relaunched pid %d (first %d), running %v", second, first, Running(dir, "component"))
	}
	cmdline := execedCmdline(t, second)
	if got, want := cmdline, sleep+"\x00300\x00301\x00"; got != want {
		t.Errorf("relaunched command line %q, want %q", got, want)
	}
	// A second Kill of a process that is gone is no error and sends nothing.
	if _, err := Kill(dir, "component", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if killed, err := Kill(dir, "component", 5*time.Second); killed || err != nil {
		t.Errorf("Kill of an exited process: killed %v, err %v", killed, err)
	}
}

// execedCmdline reads /proc/PID/cmdline once the exec has finished. Start
// returns when the kernel closed the child's close-on-exec descriptors,
// which happens inside exec before the new program's argument pages are
// set up; in that window the file reads empty (about one run in twenty on
// a loaded machine).
func execedCmdline(t *testing.T, pid int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 || time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(time.Millisecond)
	}
}

// RelaunchIfExited leaves a running process alone and starts an exited one
// again, calling exited once, before the restart.
func TestRelaunchIfExited(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := t.TempDir()
	first, err := StartDetached(dir, "component", sleep, "300")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopDir(dir, t.Logf) })
	calls := 0
	exited := func() {
		calls++
		if Running(dir, "component") {
			t.Error("exited called while a process runs")
		}
	}
	if started, err := RelaunchIfExited(dir, "component", exited); started || err != nil || calls != 0 || PID(dir, "component") != first {
		t.Fatalf("running process: started %v, err %v, exited calls %d, pid %d (was %d)", started, err, calls, PID(dir, "component"), first)
	}
	if _, err := Kill(dir, "component", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	started, err := RelaunchIfExited(dir, "component", exited)
	if !started || err != nil || calls != 1 || !Running(dir, "component") || PID(dir, "component") == first {
		t.Fatalf("exited process: started %v, err %v, exited calls %d, running %v, pid %d (was %d)", started, err, calls, Running(dir, "component"), PID(dir, "component"), first)
	}
}
