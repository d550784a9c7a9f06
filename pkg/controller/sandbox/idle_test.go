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

package sandbox

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

const testGrace = 30 * time.Second

// idleSandbox is a Ready, opted-in Sandbox (W = 15m) whose Ready
// transition was at readyAt, with last-activity a when a is not zero.
func idleSandbox(readyAt, a time.Time, mutate ...func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
	return sandbox("idle", append([]func(*agentsv1beta1.Sandbox){func(sb *agentsv1beta1.Sandbox) {
		sb.ResourceVersion = "42"
		sb.Annotations = map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "15m"}
		if !a.IsZero() {
			sb.Annotations[agentsv1beta1.LastActivityAnnotation] = agentsv1beta1.FormatActivityTime(a)
		}
		sb.Status.Conditions = []metav1.Condition{{Type: string(agentsv1beta1.SandboxConditionReady), Status: metav1.ConditionTrue,
			Reason: "DependenciesReady", LastTransitionTime: metav1.NewTime(readyAt)}}
	}}, mutate...)...)
}

// idleSync runs one sync of the Sandbox "idle" and returns its requeue
// and the Sandbox patches it sent (status patches left out).
func (f *fixture) idleSync() (time.Duration, []string) {
	f.t.Helper()
	f.agents.ClearActions()
	f.c.opts.IdleSuspendGrace = testGrace
	_, ctx := ktesting.NewTestContext(f.t)
	requeue, err := f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: "idle"})
	if err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	var patches []string
	for _, a := range f.agents.Actions() {
		if p, ok := a.(core.PatchAction); ok && p.GetSubresource() == "" {
			patches = append(patches, string(p.GetPatch()))
		}
	}
	return requeue, patches
}

func suspendPatch(at time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": "42", "annotations": map[string]any{
			agentsv1beta1.IdleSuspendedAtAnnotation: agentsv1beta1.FormatActivityTime(at)}},
		"spec": map[string]any{"operatingMode": "Suspended"},
	})
	return string(b)
}

func TestIdleDeadline(t *testing.T) {
	w := 15 * time.Minute
	for _, tc := range []struct {
		name        string
		sb          *agentsv1beta1.Sandbox
		wantRequeue time.Duration // 0: no idle timer (other timers may still apply)
		wantPatch   bool
		wantEvents  []string
	}{{
		name:        "last activity counts: one second before a+W+grace",
		sb:          idleSandbox(now.Add(-time.Hour), now.Add(-w-testGrace+time.Second)),
		wantRequeue: time.Second,
	}, {
		name:       "at a+W+grace: suspended by one conditional patch",
		sb:         idleSandbox(now.Add(-time.Hour), now.Add(-w-testGrace)),
		wantPatch:  true,
		wantEvents: []string{"Normal IdleSuspended Suspended after 15m0s without requests through the router"},
	}, {
		name:        "no last activity: the Ready transition counts",
		sb:          idleSandbox(now.Add(-w), time.Time{}),
		wantRequeue: testGrace,
	}, {
		name:        "last activity beyond now+grace is treated as absent",
		sb:          idleSandbox(now.Add(-w), now.Add(time.Hour)),
		wantRequeue: testGrace,
	}, {
		name:        "last activity within the grace ahead is believed (clock skew)",
		sb:          idleSandbox(now.Add(-w), now.Add(testGrace)),
		wantRequeue: w + 2*testGrace,
	}, {
		name: "pool members are never idle-suspended",
		sb: idleSandbox(now.Add(-time.Hour), time.Time{}, func(sb *agentsv1beta1.Sandbox) {
			sb.Labels = map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "pool-hash"}
		}),
	}, {
		name: "not opted in",
		sb: idleSandbox(now.Add(-time.Hour), time.Time{}, func(sb *agentsv1beta1.Sandbox) {
			delete(sb.Annotations, agentsv1beta1.IdleTimeoutAnnotation)
		}),
	}, {
		name: "invalid window: one Warning, ignored",
		sb: idleSandbox(now.Add(-time.Hour), time.Time{}, func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations[agentsv1beta1.IdleTimeoutAnnotation] = "30s"
		}),
		wantEvents: []string{`Warning InvalidIdleTimeout Ignoring agents.x-k8s.io/idle-timeout "30s" is outside [1m0s, 168h0m0s]`},
	}, {
		name: "not ready and no activity: nothing to count from",
		sb: idleSandbox(now.Add(-time.Hour), time.Time{}, func(sb *agentsv1beta1.Sandbox) {
			sb.Status.Conditions[0].Status = metav1.ConditionFalse
		}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := ownedPod(tc.sb, "idle", true)
			f := newFixture(t, []*agentsv1beta1.Sandbox{tc.sb}, pod)
			// Twice: the second pass shows the Warning is not repeated.
			for range 2 {
				requeue, patches := f.idleSync()
				if tc.wantPatch {
					if diff := cmp.Diff([]string{suspendPatch(now)}, patches); diff != "" {
						t.Fatalf("patches (-want +got):\n%s", diff)
					}
					if requeue != 0 {
						t.Errorf("requeue after the suspend patch = %v, want 0 (its watch event brings the Sandbox back)", requeue)
					}
					break
				}
				if len(patches) > 0 && patches[0] == suspendPatch(now) {
					t.Fatalf("suspended before the deadline: %v", patches)
				}
				if tc.wantRequeue != 0 && requeue != tc.wantRequeue {
					t.Errorf("requeue = %v, want %v", requeue, tc.wantRequeue)
				}
				if tc.wantRequeue == 0 && requeue != 0 && requeue >= time.Minute {
					t.Errorf("requeue = %v: an idle timer armed for a Sandbox not subject to it", requeue)
				}
			}
			if diff := cmp.Diff(tc.wantEvents, f.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
