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
