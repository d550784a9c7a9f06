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
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// ControllerSpec says how chaos and soak run the controller under test:
// as local processes beside a detached local cluster, recorded in its state
// directory (so 'local-cluster down' stops them too), with the admin
// kubeconfig and ports of their own.
type ControllerSpec struct {
	Binary string
	// ExtraArgs are appended to the flags below and win over them.
	ExtraArgs []string
	// ClusterDir is the local cluster's state directory.
	ClusterDir string
	// BasePort: replica i serves metrics on BasePort+2i and probes on
	// BasePort+2i+1, all on 127.0.0.1.
	BasePort int
	// WebhookPort is the conversion webhook of replica 0. Only replica 0
	// serves it: with a URL per replica the two would keep re-pointing the
	// CRDs at themselves. Every request of the run is v1beta1, the storage
	// version, so none needs conversion while replica 0 is down.
	WebhookPort int
}

// Process name of replica i in the cluster's state directory.
func (s ControllerSpec) name(i int) string { return fmt.Sprintf("agent-sandbox-controller-%d", i) }

func (s ControllerSpec) metricsURL(i int) string {
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", s.BasePort+2*i)
}

// args are the flags of replica i. Leader election needs a namespace
// outside a cluster; 'default' is where the admin kubeconfig may write.
func (s ControllerSpec) args(i int, leaderElect bool) []string {
	a := []string{
		"--kubeconfig", filepath.Join(s.ClusterDir, localcluster.KubeconfigFile),
		"--extensions", "--enable-pprof-debug",
		"--leader-elect=" + strconv.FormatBool(leaderElect), "--leader-election-namespace=default",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", s.BasePort+2*i),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", s.BasePort+2*i+1),
	}
	if i == 0 {
		a = append(a, "--webhook-port", strconv.Itoa(s.WebhookPort),
			"--webhook-url", fmt.Sprintf("https://127.0.0.1:%d/convert", s.WebhookPort))
	} else {
		a = append(a, "--enable-webhook=false")
	}
	return append(a, s.ExtraArgs...)
}

// get fetches url with a short timeout.
func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// isLeader tells whether replica i runs the controllers. Their workqueues
// are built only once leading, and the queue metrics appear with them; a
// follower serves the Go and process metrics alone.
func (s ControllerSpec) isLeader(ctx context.Context, i int) bool {
	b, err := get(ctx, s.metricsURL(i))
	return err == nil && bytes.Contains(b, []byte("\nworkqueue_adds_total{"))
}

// Controller modes of the chaos schedule.
const (
	// ModeSingle is one replica without leader election, SIGKILLed and
	// restarted within a second, over and over.
	ModeSingle = "single"
	// ModeLeader is two replicas electing a leader on a Lease; the leader
	// is killed and the follower must take over.
	ModeLeader = "leader"
	// modeOneElected is the soak's: one replica with leader election on,
	// as deployed.
	modeOneElected = "one-elected"
)

// controllerSet runs the replicas of the current mode and restarts any
// that exits on its own, as a kubelet would. Every start and kill is
// serialised by mu, so the set never runs a leader-elected replica beside
// one without election.
type controllerSet struct {
	spec ControllerSpec
	logf func(string, ...any)

	mu       sync.Mutex
	mode     string
	replicas int
	// exits are replicas seen dead that no fault had killed (a leader that
	// lost its Lease during an API server restart exits, by design).
	exits []ControllerExit
	start time.Time
}

// ControllerExit is a replica that exited without being killed.
type ControllerExit struct {
	AtSeconds float64 `json:"atSeconds"`
	Replica   string  `json:"replica"`
	Mode      string  `json:"mode"`
}

func modeReplicas(mode string) int {
	if mode == ModeLeader {
		return 2
	}
	return 1
}

// setMode stops every replica (SIGKILL, as a crash) and starts the replicas
// of mode. It returns whether anything was killed.
func (cs *controllerSet) setMode(mode string) (bool, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	killed := false
	for i := range 2 {
		k, err := localcluster.Kill(cs.spec.ClusterDir, cs.spec.name(i), 10*time.Second)
		if err != nil && !isNotExist(err) {
			return killed, err
		}
		killed = killed || k
	}
	cs.mode, cs.replicas = mode, modeReplicas(mode)
	for i := range cs.replicas {
		if _, err := localcluster.StartDetached(cs.spec.ClusterDir, cs.spec.name(i), cs.spec.Binary, cs.spec.args(i, mode != ModeSingle)...); err != nil {
			return killed, err
		}
	}
	return killed, nil
}

// kill SIGKILLs replica i, waits delay and starts it again with the same
// command line. It returns when the new process was started.
func (cs *controllerSet) kill(i int, delay time.Duration) (bool, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	killed, err := localcluster.Kill(cs.spec.ClusterDir, cs.spec.name(i), 10*time.Second)
	if err != nil {
		return killed, err
	}
	time.Sleep(delay)
	_, err = localcluster.Relaunch(cs.spec.ClusterDir, cs.spec.name(i))
	return killed, err
}

// supervise restarts, every 250ms, a replica of the current mode found
// dead, and records it.
func (cs *controllerSet) supervise(ctx context.Context) {
	_ = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, false, func(context.Context) (bool, error) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		for i := range cs.replicas {
			name := cs.spec.name(i)
			if _, err := localcluster.RelaunchIfExited(cs.spec.ClusterDir, name, func() {
				cs.exits = append(cs.exits, ControllerExit{AtSeconds: round3(time.Since(cs.start).Seconds()), Replica: name, Mode: cs.mode})
				cs.logf("%s exited on its own; starting it again", name)
			}); err != nil {
				cs.logf("restarting %s: %v", name, err)
			}
		}
		return false, nil
	})
}

// leader returns the replica that leads now, or -1.
func (cs *controllerSet) leader(ctx context.Context) int {
	cs.mu.Lock()
	n := cs.replicas
	cs.mu.Unlock()
	for i := range n {
		if cs.spec.isLeader(ctx, i) {
			return i
		}
	}
	return -1
}

// waitLeading waits until some replica runs the controllers.
func (cs *controllerSet) waitLeading(ctx context.Context, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return cs.leader(ctx) >= 0, nil
	})
}

// stop stops every replica gracefully.
func (cs *controllerSet) stop() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.replicas = 0
	var first error
	for i := range 2 {
		if err := localcluster.Stop(cs.spec.ClusterDir, cs.spec.name(i), 15*time.Second); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (cs *controllerSet) exitsSoFar() []ControllerExit {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]ControllerExit(nil), cs.exits...)
}
