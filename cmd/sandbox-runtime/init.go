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
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// runAsInit is what the binary does as PID 1 of its container: the
// minimal init of tini or `docker run --init`. Every process a command
// orphans becomes PID 1's child, and the server cannot reap those itself
// (a wait for any child would steal its own commands' exit statuses), so
// PID 1 starts the server as its child, forwards termination signals to
// it, reaps every child, and exits with the server's status.
func runAsInit() int {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	server, err := os.StartProcess(self, os.Args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: starting the server under init: %v\n", binaryName, err)
		return 1
	}
	for {
		if status, done := reapChildren(server.Pid); done {
			return status
		}
		if sig := <-sigs; sig != syscall.SIGCHLD {
			_ = server.Signal(sig)
		}
	}
}

// reapChildren reaps every exited child; done reports that the server was
// among them, with its exit status (128+N for death by signal N).
func reapChildren(serverPid int) (status int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != serverPid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
