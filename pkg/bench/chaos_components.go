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

package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// ComponentExit is a process of the control plane's workloads side
// (kube-controller-manager, kube-scheduler, kwok) that exited on its own
// during a chaos run and that the harness started again, as a kubelet
// restarts a static Pod. kube-scheduler exits by design when it finds its
// cache corrupted ("Pod updated on a different node than previously added
// to"), which the API server restarts of a chaos run can cause; without a
// restart no Pod would be scheduled again and every later check would
// fail on the harness, not on the system tested.
type ComponentExit struct {
	Name      string  `json:"name"`
	AtSeconds float64 `json:"atSeconds"`
	// LastLog is the last line the process logged.
	LastLog string `json:"lastLog,omitempty"`
}

// supervisedComponents are the processes superviseComponents restarts:
// the API server and etcd are the fault injector's.
var supervisedComponents = []string{localcluster.ControllerManagerComponent, localcluster.SchedulerComponent, localcluster.KwokComponent}

// componentSupervisor restarts, every 250ms, a supervised component found
// dead, and records it.
type componentSupervisor struct {
	dir   string
	start time.Time
	logf  func(format string, args ...any)

	mu    sync.Mutex
	exits []ComponentExit
}

func (s *componentSupervisor) run(ctx context.Context) {
	_ = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, false, func(context.Context) (bool, error) {
		for _, name := range supervisedComponents {
			if localcluster.PID(s.dir, name) == 0 {
				continue // never started (a cluster without workloads)
			}
			if _, err := localcluster.RelaunchIfExited(s.dir, name, func() {
				exit := ComponentExit{Name: name, AtSeconds: round3(time.Since(s.start).Seconds()), LastLog: lastLogLine(s.dir, name)}
				s.mu.Lock()
				s.exits = append(s.exits, exit)
				s.mu.Unlock()
				s.logf("%s exited on its own (last log line: %s); starting it again", name, exit.LastLog)
			}); err != nil {
				s.logf("restarting %s: %v", name, err)
			}
		}
		return false, nil
	})
}

// exited returns the exits recorded so far.
func (s *componentSupervisor) exited() []ComponentExit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ComponentExit(nil), s.exits...)
}

// lastLogLine is the last non-empty line of name's log, at most 300 bytes.
func lastLogLine(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, "logs", name+".log"))
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}
