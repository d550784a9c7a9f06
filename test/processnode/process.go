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
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// procIdentity names one process across restarts of the process node: a
// PID alone may be reused by the kernel for an unrelated program, but a
// PID together with its start time (in clock ticks since boot) and the
// boot's ID is never reused. Nothing is signalled without a match.
type procIdentity struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"startTicks"`
	BootID     string `json:"bootID"`
}

// procStat is what the process node reads from /proc/<pid>/stat.
type procStat struct {
	state      byte
	sid        int
	startTicks uint64
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may
// contain spaces and parentheses, so fields are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// After ')': state(3) ppid(4) pgrp(5) session(6) ... starttime(22).
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return procStat{state: f[0][0], sid: sid, startTicks: start}, nil
}

var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// identify records the identity of a process just started.
func identify(pid int) (procIdentity, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return procIdentity{}, err
	}
	return procIdentity{PID: pid, StartTicks: st.startTicks, BootID: bootID()}, nil
}

// alive reports whether the recorded process still runs: same boot, same
// PID, same start time, and not a zombie.
func (id procIdentity) alive() bool {
	if id.PID <= 0 || id.BootID == "" || id.BootID != bootID() {
		return false
	}
	st, err := readProcStat(id.PID)
	return err == nil && st.startTicks == id.StartTicks && st.state != 'Z'
}

// sessionMembers lists the live processes of the session the recorded
// process leads. The runtime is started as a session leader, so every
// command it runs and every background child those leave behind are in
// that session unless they call setsid themselves.
//
// Once the leader is gone its PID may be reused, and a new process with
// it may start a session of the same ID; processes of that session are
// not ours. So members are only trusted while the leader is alive with its
// recorded identity, or when no process holds the PID at all; and a
// member must have started after the leader.
func (id procIdentity) sessionMembers() ([]int, error) {
	if id.PID <= 0 || id.BootID != bootID() {
		return nil, nil
	}
	if st, err := readProcStat(id.PID); err == nil && st.startTicks != id.StartTicks {
		// The PID is another process's now.
		return nil, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.sid != id.PID || st.state == 'Z' || st.startTicks < id.StartTicks {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// killSession SIGKILLs every member of the session (the leader included),
// ignoring processes that are already gone.
func (id procIdentity) killSession() error {
	pids, err := id.sessionMembers()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signalling pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// signalLeader signals the recorded process itself, if it is still it.
func (id procIdentity) signalLeader(sig syscall.Signal) error {
	if !id.alive() {
		return nil
	}
	if err := syscall.Kill(id.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", id.PID, err)
	}
	return nil
}
