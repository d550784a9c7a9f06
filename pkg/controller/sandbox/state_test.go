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
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// State keyed by a Sandbox goes on its delete event, tombstone or not (the
// sync that finds it gone forgets too: delete events can be missed).
func TestSandboxStateForgottenOnDeleteEvent(t *testing.T) {
	for name, obj := range map[string]any{
		"object":    sandbox("gone"),
		"tombstone": cache.DeletedFinalStateUnknown{Key: ns + "/gone", Obj: sandbox("gone")},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.c.writeBehind = newWriteBehind(500 * time.Millisecond)
			f.c.expectations.ExpectCreations(ns+"/gone", 1)
			f.c.writeBehind.wait(ns+"/gone", now)

			f.c.onSandboxDeleted(obj)

			if adds, dels := f.c.expectations.Pending(ns + "/gone"); adds != 0 || len(dels) != 0 {
				t.Errorf("expectations left: %d creates, %v deletes", adds, dels)
			}
			if rem := f.c.writeBehind.remaining(ns+"/gone", now); rem != 0 {
				t.Errorf("a write-behind deferral is left: %s", rem)
			}
			if f.c.queue.Len() != 1 {
				t.Errorf("queue holds %d keys, want the deleted Sandbox's", f.c.queue.Len())
			}
		})
	}
}

// A deferred Pod metadata patch that no longer applies (the Sandbox was
// suspended, so its Pod goes) is dropped: its entry would otherwise stay
// for as long as the Sandbox is suspended, and requeue it every
// millisecond.
func TestWriteBehindDroppedWhenNothingToPatch(t *testing.T) {
	sb := sandbox("wb", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.PodTemplate.ObjectMeta.Labels = map[string]string{"team": "blue"}
	})
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, ownedPod(sb, "wb", true))
	f.c.writeBehind = newWriteBehind(500 * time.Millisecond)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.ObjectName{Namespace: ns, Name: "wb"}
	if requeue, err := f.c.sync(ctx, key); err != nil || requeue != 500*time.Millisecond {
		t.Fatalf("first pass: requeue %s, err %v; want the patch deferred for the 500ms window", requeue, err)
	}

	suspended := sb.DeepCopy()
	suspended.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	f.seed(suspended)
	f.c.opts.Clock.(*clocktesting.FakeClock).Step(time.Second)
	requeue, err := f.c.sync(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if requeue != 0 {
		t.Errorf("suspended pass asks to be requeued after %s, want no requeue", requeue)
	}
	if rem := f.c.writeBehind.remaining("team/wb", f.c.opts.Clock.Now()); rem != 0 {
		t.Errorf("the moot deferral is still pending: %s", rem)
	}
}
