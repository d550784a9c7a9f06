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

package sandboxwarmpool

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// creationTimes records when this test first saw each pool member.
type creationTimes struct {
	mu    sync.Mutex
	times []time.Time
}

func watchCreations(t *testing.T, env *framework.Env) *creationTimes {
	t.Helper()
	c := &creationTimes{}
	watchSandboxes(t, env, func(cache.Store) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{AddFunc: func(any) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.times = append(c.times, time.Now())
		}}
	})
	return c
}

// TestRefillRateLimit: with --sandbox-warm-pool-max-refill-rate 5, a pool
// of 20 is created at most 5 per second after a first bucket of 5 (with a
// second of slack for scheduling noise), and still fills.
func TestRefillRateLimit(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllersWithOptions(t, env, framework.ControllerOptions{PoolMaxRefillRate: 5}, allControllers...)
	seen := watchCreations(t, env)
	setup(t, env, 20, "")
	waitPool(t, env, 20)

	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.times) != 20 {
		t.Fatalf("saw %d creations, want 20", len(seen.times))
	}
	start := seen.times[0]
	for i, at := range seen.times {
		allowed := 5 + 5*(at.Sub(start).Seconds()+1)
		if float64(i+1) > allowed {
			t.Errorf("%d members after %s: more than the 5/s rate allows (%.0f)", i+1, at.Sub(start).Round(time.Millisecond), allowed)
		}
	}
	if spread := seen.times[19].Sub(start); spread < 2*time.Second {
		t.Errorf("20 creates spread over %s; at 5/s after a bucket of 5 they need at least 3s", spread)
	}
}

// TestReplenishDelay: after members leave the pool (claimed), it waits
// the replenish delay before creating replacements, then refills.
func TestReplenishDelay(t *testing.T) {
	env := framework.Setup(t)
	const delay = 4 * time.Second
	framework.StartControllersWithOptions(t, env, framework.ControllerOptions{PoolReplenishDelay: delay}, allControllers...)
	setup(t, env, 3, "")
	waitPool(t, env, 3)
	seen := watchCreations(t, env)
	seen.mu.Lock()
	before := len(seen.times)
	seen.mu.Unlock()

	// Two members leave the pool: orphaned, as a claim would take them.
	ctx := framework.Context(t, timeout)
	left := time.Now()
	for _, sb := range members(t, env)[:2] {
		patch := []byte(`{"metadata":{"ownerReferences":null,"labels":{"` + agentsv1beta1.WarmPoolSandboxLabel + `":null}}}`)
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Patch(ctx, sb.Name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return len(seen.times) >= before+2, nil
	})
	if err != nil {
		t.Fatal("the pool never replaced the members that left")
	}
	seen.mu.Lock()
	first := seen.times[before]
	seen.mu.Unlock()
	// Creation timestamps of the delay are measured from when the pool saw
	// the drop, which is after 'left'; allow a second for that.
	if waited := first.Sub(left); waited < delay-time.Second {
		t.Errorf("replacement created %s after the members left; the replenish delay is %s", waited.Round(time.Millisecond), delay)
	}
	waitPool(t, env, 3)
}
