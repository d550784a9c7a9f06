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
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// passInterval is the pool controller's least time between passes over
// one pool that its members' events start (sandboxwarmpool.passInterval).
const passInterval = 100 * time.Millisecond

// TestMemberChurnSharesPasses: every member of a pool of 30 deleted at
// once brings well over a hundred member events while the pool refills
// (deletes, creates, Pods named, Ready); they share passes at least
// passInterval apart, so the pool's passes stay within one per interval
// of the refill's duration (plus the first and the last), and the pool
// fills again with new members.
func TestMemberChurnSharesPasses(t *testing.T) {
	env := framework.Setup(t)
	ctrl := framework.StartControllers(t, env, allControllers...)
	setup(t, env, 30, "")
	waitPool(t, env, 30)
	old := map[types.UID]bool{}
	for _, sb := range members(t, env) {
		old[sb.UID] = true
	}
	events := countMemberEvents(t, env)

	before := ctrl.Syncs(t, framework.ControllerSandboxWarmPool).Total
	start := time.Now()
	events.Store(0)
	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).DeleteCollection(context.Background(), metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool")}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list := members(t, env)
		ready := 0
		for _, sb := range list {
			if !old[sb.UID] && meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)) {
				ready++
			}
		}
		return len(list) == 30 && ready == 30, nil
	})
	elapsed := time.Since(start)
	passes := ctrl.Syncs(t, framework.ControllerSandboxWarmPool).Total - before
	if err != nil {
		t.Fatalf("the pool never refilled with 30 new Ready members: %v", err)
	}
	limit := float64(elapsed/passInterval) + 3
	t.Logf("refilled in %s: %d member events, %.0f pool passes (limit %.0f)", elapsed.Round(time.Millisecond), events.Load(), passes, limit)
	if passes > limit {
		t.Errorf("%.0f pool passes in %s of member churn; spaced %s apart there is room for %.0f", passes, elapsed.Round(time.Millisecond), passInterval, limit)
	}
	waitPool(t, env, 30)
}

// countMemberEvents counts the watch events of the pool's members (a
// Sandbox with the pool's label before or after the event).
func countMemberEvents(t *testing.T, env *framework.Env) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	member := func(obj any) bool {
		sb, ok := obj.(*agentsv1beta1.Sandbox)
		return ok && sb.Labels[agentsv1beta1.WarmPoolSandboxLabel] == agentsv1beta1.NameHash("pool")
	}
	count := func(objs ...any) {
		if slices.ContainsFunc(objs, member) {
			n.Add(1)
		}
	}
	watchSandboxes(t, env, func(cache.Store) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { count(obj) },
			UpdateFunc: func(oldObj, newObj any) { count(oldObj, newObj) },
			DeleteFunc: func(obj any) { count(controller.DeletedObject(obj)) },
		}
	})
	return &n
}
