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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one control-plane binary started by this package. Every stop
// signals exactly the PID recorded at start, never a process found by name.
type process struct {
	name    string
	binary  string
	pid     int
	cmd     *exec.Cmd     // nil when the process was started by another run (detached)
	exited  chan struct{} // closed when cmd.Wait returns; nil when cmd is nil
	logPath string
}

// startProcess runs binary with args, its output appended to
// <dir>/logs/<name>.log and its PID written to <dir>/pids/<name>.pid.
//
// A detached process gets its own session, so it outlives this one (the
// cluster-up command exits while the cluster keeps running). An attached
// one is killed by the kernel if this process dies first, so a crashed test
// binary never leaks an apiserver.
func startProcess(dir, name, binary string, args []string, detach bool) (*process, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "logs", name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child holds its own descriptor

	cmd := exec.Command(binary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = dir
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, binary: binary, pid: cmd.Process.Pid, cmd: cmd, logPath: logPath}
	if err := os.WriteFile(p.pidFile(dir), []byte(strconv.Itoa(p.pid)+"\n"+binary+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	// The whole command line, NUL-separated like /proc/PID/cmdline, so
	// Relaunch can start the component again with the same data
	// directory, certificates and ports.
	if err := os.WriteFile(cmdlineFile(dir, name), []byte(strings.Join(append([]string{binary}, args...), "\x00")), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	if detach {
		// Nobody will Wait for it in this process; let it be reparented.
		_ = cmd.Process.Release()
		p.cmd = nil
	} else {
		p.exited = make(chan struct{})
		go func() { _ = cmd.Wait(); close(p.exited) }()
	}
	return p, nil
}

func (p *process) pidFile(dir string) string {
	return filepath.Join(dir, "pids", p.name+".pid")
}

// running reports whether the recorded PID is still this binary. A PID file
// from a previous run may name a PID the kernel has since given to another
// program; that one must never be signalled.
func (p *process) running() bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	want, err := filepath.EvalSymlinks(p.binary)
	if err != nil {
		want = p.binary
	}
	return exe == want
}

// stop sends SIGTERM, waits up to grace for the process to exit, then
// sends SIGKILL.
func (p *process) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", p.name, p.pid, err)
	}
	if p.waitGone(grace) {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	if !p.waitGone(5 * time.Second) {
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid)
	}
	return nil
}

func (p *process) waitGone(d time.Duration) bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.running() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !p.running()
}

// readProcess loads a process record written by startProcess in another
// run, for cluster-down.
func readProcess(dir, name string) (*process, error) {
	p := &process{name: name}
	b, err := os.ReadFile(p.pidFile(dir))
	if err != nil {
		return nil, err
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 {
		return nil, fmt.Errorf("malformed pid file %s", p.pidFile(dir))
	}
	if p.pid, err = strconv.Atoi(lines[0]); err != nil {
		return nil, fmt.Errorf("malformed pid file %s: %w", p.pidFile(dir), err)
	}
	p.binary = lines[1]
	return p, nil
}

// tail returns the last lines of the process log, for error messages when a
// component fails to come up.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
