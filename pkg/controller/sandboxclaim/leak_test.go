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

package sandboxclaim

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// failOnce makes the next takeover patch of the named Sandbox fail with
// err, without applying it.
func failOnce(f *fixture, name string, err error) {
	failed := false
	f.agents.PrependReactor("patch", "sandboxes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if failed || a.(k8stesting.PatchAction).GetName() != name {
			return false, nil, nil
		}
		failed = true
		return true, nil, err
	})
}

// reconcilerErrorStatus is the status patch of a claim whose sync failed
// with a transient error.
func reconcilerErrorStatus(t *testing.T, claim, message string) action {
	return patchClaimStatus(t, claim, `{"status":{
		"conditions":[{"type":"Ready","status":"False","reason":"ReconcilerError","message":"Error seen: `+message+`","observedGeneration":1,"lastTransitionTime":"`+now.Format(time.RFC3339)+`"}]}}`)
}

// A takeover whose outcome is unknown (a 500, a timeout) keeps the
// claim's binding marker, so the claim waits to see whether the write
// landed, but the member's reservation ends: at once when the informer
// shows the member at another resourceVersion (the patch, which carried
// the old one, can no longer land), or after reservationTTL. Before, the
// member stayed reserved for the life of the process: counted by the pool,
// taken by no claim.
func TestSyncUnknownTakeoverErrorFreesReservation(t *testing.T) {
	serverError := apierrors.NewInternalError(errors.New("etcdserver: request timed out"))
	for name, tc := range map[string]struct {
		endReservation func(*fixture)
		rv             string // the member's resourceVersion afterwards
	}{
		"the informer shows the member moved on": {func(f *fixture) {
			sb := newMember("pool-a", memberReady, 10*time.Minute)
			sb.ResourceVersion = "6" // still the pool's: our write did not land
			f.cache(sb)
			f.c.sandboxChanged(sb)
		}, "6"},
		"the reservation expires": {func(f *fixture) { f.clock.Step(reservationTTL) }, "5"},
	} {
		t.Run(name, func(t *testing.T) {
			c1, c2 := newClaim("c1"), newClaim("c2")
			f := newFixture(t, newTemplate(), newPool(), c1, c2, newMember("pool-a", memberReady, 10*time.Minute))
			failOnce(f, "pool-a", serverError)

			if _, err := f.run("c1"); err == nil {
				t.Fatal("sync succeeded, want the takeover error")
			}
			f.expectActions(takeover(t, c1, "pool-a"),
				reconcilerErrorStatus(t, "c1", "adopting sandbox pool-a: Internal error occurred: etcdserver: request timed out"))

			// The claim itself waits for the informer: its write may have
			// landed.
			if requeue := f.runOK("c1"); requeue != warmWaitStep {
				t.Errorf("c1 after the unknown outcome: requeue %s, want %s", requeue, warmWaitStep)
			}
			f.expectActions()

			tc.endReservation(f)
			f.runOK("c2")
			f.expectActions(takeoverAt(t, c2, "pool-a", tc.rv), boundStatusAt(t, "c2", "pool-a", f.clock.Now()))
			f.expectEvents("Normal SandboxAdopted Adopted warm Sandbox pool-a from pool pool")
		})
	}
}

// While the unknown outcome is unresolved, no other claim takes the
// member: the reservation steers them to another one.
func TestSyncReservationHeldUntilOutcomeKnown(t *testing.T) {
	c1, c2 := newClaim("c1"), newClaim("c2")
	f := newFixture(t, newTemplate(), newPool(), c1, c2,
		newMember("pool-a", memberReady, 10*time.Minute), newMember("pool-b", memberReady, 5*time.Minute))
	failOnce(f, "pool-a", apierrors.NewTimeoutError("request did not complete", 0))

	if _, err := f.run("c1"); err == nil {
		t.Fatal("sync succeeded, want the takeover error")
	}
	f.runOK("c2")
	f.expectActions(takeover(t, c2, "pool-b"), boundStatus(t, "c2", "pool-b"))
}

// The record of a written status lasts until the informer shows the
// claim at another resourceVersion, and no longer than the claim.
// Before, a record stayed for the life of the process: it was dropped only
// when a later pass compared against it, which a pass whose cache already
// showed the written status never did, or on a DeletionTimestamp, which a
// claim without finalizers rarely shows.
func TestWrittenStatusFreed(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim, newMember("pool-a", memberReady, time.Minute))
	f.runOK("c1")
	if n := f.c.state.written.Len(); n != 1 {
		t.Fatalf("%d written-status records after the write, want 1", n)
	}

	// The informer shows the write: the cache is the truth again.
	written := claim.DeepCopy()
	written.ResourceVersion = "11"
	written.Status = extv1beta1.SandboxClaimStatus{
		Conditions:    []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "DependenciesReady", ObservedGeneration: 1, LastTransitionTime: readySince}},
		SandboxStatus: extv1beta1.SandboxStatus{Name: "pool-a", PodIPs: []string{"127.0.0.10"}},
	}
	bound := newMember("pool-a", memberReady, time.Minute)
	bound.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)}
	f.cache(bound)
	f.cache(written)
	f.runOK("c1")
	f.expectActions()
	if n := f.c.state.written.Len(); n != 0 {
		t.Errorf("%d written-status records once the cache shows the write, want 0", n)
	}

	// A record left by a pass racing the deletion goes with the claim.
	f.c.state.written.Wrote(claim.UID, "11", written.Status)
	f.uncache(written)
	f.c.claimDeleted(written)
	if n := f.c.state.written.Len(); n != 0 {
		t.Errorf("%d written-status records after the claim's delete event, want 0", n)
	}
}

// Everything the controller remembers about a claim goes with it: on its
// delete event (also when the informer only knows the final state was
// lost), and on a sync that finds it gone, since a delete event can be
// missed altogether. The claim here has been seen, bound warm (its member
// still reserved until the informer shows the takeover), has a status
// record, and a forged Sandbox naming it as its controller was reported.
func TestClaimStateFreed(t *testing.T) {
	for name, remove := range map[string]func(*fixture, *extv1beta1.SandboxClaim){
		"delete event": func(f *fixture, claim *extv1beta1.SandboxClaim) {
			f.c.claimDeleted(claim)
		},
		"delete event, final state unknown": func(f *fixture, claim *extv1beta1.SandboxClaim) {
			f.c.claimDeleted(cache.DeletedFinalStateUnknown{Key: ns + "/" + claim.Name, Obj: claim})
		},
		"NotFound sync": func(f *fixture, claim *extv1beta1.SandboxClaim) {
			f.runOK(claim.Name)
			f.expectActions()
		},
	} {
		t.Run(name, func(t *testing.T) {
			claim := newClaim("c1")
			forged := newMember("forged", memberReady, time.Hour)
			forged.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate"
			forged.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)}
			f := newFixture(t, newTemplate(), newPool(), claim, forged, newMember("pool-a", memberReady, time.Minute))
			f.c.claimAdded(claim)
			f.runOK("c1")
			f.expectActions(takeover(t, claim, "pool-a"), boundStatus(t, "c1", "pool-a"))
			// The template verdicts are pool-a's and the forgery's, which
			// outlive the claim as long as those Sandboxes exist.
			want := StateSize{Claims: 1, Reservations: 1, Untrusted: 1, WrittenStatus: 1, TemplateVerdicts: 2}
			if diff := cmp.Diff(want, f.c.StateSize()); diff != "" {
				t.Fatalf("state of a bound claim (-want,+got):\n%s", diff)
			}

			f.uncache(claim)
			remove(f, claim)
			if diff := cmp.Diff(StateSize{TemplateVerdicts: 2}, f.c.StateSize()); diff != "" {
				t.Errorf("state after the claim is gone (-want,+got):\n%s", diff)
			}
			f.uncache(forged)
			f.c.sandboxDeleted(forged)
			if n := f.c.StateSize().TemplateVerdicts; n != 1 {
				t.Errorf("%d template verdicts after the forgery's delete event, want 1 (pool-a's)", n)
			}
		})
	}
}
