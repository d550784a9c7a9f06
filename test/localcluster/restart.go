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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Component names of a detached control plane, for Kill and Relaunch.
const (
	EtcdComponent              = etcdName
	APIServerComponent         = apiServerName
	ControllerManagerComponent = controllerManagerName
	SchedulerComponent         = schedulerName
	KwokComponent              = kwokName
)

// Fault injection (sandbox-bench chaos) kills one process of a detached
// control plane, or one started beside it with StartDetached, and starts it
// again from the command line recorded at its start: same binary, flags,
// data directory, certificates and ports. Every signal goes to the PID of
// the record, and only while that PID still runs the recorded binary.

// Components are the process names of a control plane with workloads, in
// start order.
func Components() []string { return slices.Clone(startOrder) }

func cmdlineFile(dir, name string) string {
	return filepath.Join(dir, "pids", name+".cmdline")
}

// readCmdline returns the recorded command line of name, binary first.
func readCmdline(dir, name string) ([]string, error) {
	b, err := os.ReadFile(cmdlineFile(dir, name))
	if err != nil {
		return nil, err
	}
	argv := strings.Split(string(b), "\x00")
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("empty command line in %s", cmdlineFile(dir, name))
	}
	return argv, nil
}

// Running reports whether the process recorded as name in dir runs.
func Running(dir, name string) bool {
	p, err := readProcess(dir, name)
	return err == nil && p.running()
}

// Kill sends SIGKILL to the process recorded as name in dir and waits until
// it is gone, reaping it when this process is its parent (it started it with
// StartDetached or Relaunch), so repeated kills leave no zombies. A process
// that already exited is not an error; killed reports whether a signal was
// sent.
func Kill(dir, name string, timeout time.Duration) (killed bool, err error) {
	p, err := readProcess(dir, name)
	if err != nil {
		return false, err
	}
	if !p.running() {
		reap(p.pid)
		return false, nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("killing %s (pid %d): %w", name, p.pid, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if !p.running() {
			// Dying or dead. running() goes false as soon as the kernel
			// drops the process's memory (its /proc exe link), a moment
			// before it becomes a zombie that can be waited for, so a
			// single non-blocking reap here could come too early and
			// leave the zombie behind.
			reapWithin(p.pid, time.Until(deadline))
			return true, nil
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("%s (pid %d) still runs %s after SIGKILL", name, p.pid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reap collects the exit status of pid if it is a child of this process;
// for anyone else's process it does nothing (ECHILD).
func reap(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

// reapWithin reaps pid, a process known to be dying, waiting up to
// timeout for it to become waitable; it returns at once when pid is not a
// child of this process (ECHILD).
func reapWithin(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || (err != nil && !errors.Is(err, syscall.EINTR)) || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Reap collects the exit status of the recorded process name if it exited
// on its own and this process started it; a supervisor calls it before
// starting the process again.
func Reap(dir, name string) {
	if p, err := readProcess(dir, name); err == nil {
		reap(p.pid)
	}
}

// RelaunchIfExited starts name again, as Relaunch does, when its recorded
// process no longer runs (it exited on its own or was killed), after
// reaping it and calling exited (if not nil) while its log still ends with
// the exited process's last line. It reports whether it started one: the
// one step of every supervisor of a detached control plane.
func RelaunchIfExited(dir, name string, exited func()) (bool, error) {
	if Running(dir, name) {
		return false, nil
	}
	Reap(dir, name)
	if exited != nil {
		exited()
	}
	_, err := Relaunch(dir, name)
	return true, err
}

// Relaunch starts name again, detached, from the command line recorded in
// dir, appending to the same log file. It refuses while the recorded
// process still runs: two etcds on one data directory, or two controllers
// meant as one, would be a fault of the harness, not of the system tested.
func Relaunch(dir, name string) (pid int, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if Running(dir, name) {
		return 0, fmt.Errorf("%s still runs; kill it first", name)
	}
	argv, err := readCmdline(dir, name)
	if err != nil {
		return 0, fmt.Errorf("reading the command line of %s: %w", name, err)
	}
	p, err := startProcess(dir, name, argv[0], argv[1:], true)
	if err != nil {
		return 0, err
	}
	return p.pid, nil
}

// Stop stops the one process recorded as name in dir (SIGTERM, then
// SIGKILL after grace) and removes its record, leaving the rest of the
// cluster running.
func Stop(dir, name string, grace time.Duration) error {
	p, err := readProcess(dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := p.stop(grace); err != nil {
		return err
	}
	reap(p.pid)
	_ = os.Remove(p.pidFile(dir))
	_ = os.Remove(cmdlineFile(dir, name))
	return nil
}

// PID returns the recorded PID of name in dir, 0 if there is no record.
func PID(dir, name string) int {
	p, err := readProcess(dir, name)
	if err != nil {
		return 0
	}
	return p.pid
}
