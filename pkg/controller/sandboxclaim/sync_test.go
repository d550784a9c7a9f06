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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// boundStatus is the status patch of a claim newly bound to a Ready
// member (its Ready condition mirrored, with the claim's generation, and
// WarmStart=True).
func boundStatus(t *testing.T, claim, sandbox string) action {
	return boundStatusAt(t, claim, sandbox, now)
}

// boundStatusAt is boundStatus written when the controller's clock says at.
func boundStatusAt(t *testing.T, claim, sandbox string, at time.Time) action {
	return patchClaimStatus(t, claim, `{"status":{
		"conditions":[{"type":"Ready","status":"True","reason":"DependenciesReady","message":"","observedGeneration":1,"lastTransitionTime":"`+readySince.UTC().Format(time.RFC3339)+`"},
			{"type":"WarmStart","status":"True","reason":"WarmPoolMember","message":"The claim got a member of its warm pool.","observedGeneration":1,"lastTransitionTime":"`+at.UTC().Format(time.RFC3339)+`"}],
		"sandbox":{"name":"`+sandbox+`","podIPs":["127.0.0.10"]}}}`)
}

// conflictOn makes every takeover patch of the named Sandboxes fail as if
// another writer had changed them first.
func conflictOn(f *fixture, names ...string) {
	f.agents.PrependReactor("patch", "sandboxes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.PatchAction).GetName()
		for _, n := range names {
			if n == name {
				return true, nil, apierrors.NewConflict(agentsv1beta1.SandboxesResource.GroupResource(), name, nil)
			}
		}
		return false, nil, nil
	})
}

// A Ready member is taken before an older one that has its Pod IP but is
// not Ready yet, and before one still starting; one takeover patch, one
// status patch, one Event.
func TestSyncReadyCandidateBeatsStarting(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim,
		newMember("pool-up", memberUp, 10*time.Minute),
		newMember("pool-ready", memberReady, 5*time.Minute),
		newMember("pool-starting", memberStarting, 20*time.Minute))

	if requeue := f.runOK("c1"); requeue != 0 {
		t.Errorf("requeue %s, want none", requeue)
	}
	f.expectActions(takeover(t, claim, "pool-ready"), boundStatus(t, "c1", "pool-ready"))
	f.expectEvents("Normal SandboxAdopted Adopted warm Sandbox pool-ready from pool pool")
}

// A young claim whose pool has only starting members (no Pod IP yet)
// waits for them in steps of warmWaitStep, but never past warmWait after
// its creation: the last step is what is left of it. No write meanwhile.
func TestSyncYoungClaimWaitsForStartingMembersUntilWarmWait(t *testing.T) {
	for name, tc := range map[string]struct {
		age  time.Duration
		want time.Duration
	}{
		"just created: one step":     {age: 0, want: warmWaitStep},
		"1.8 s old: the 200 ms left": {age: 1800 * time.Millisecond, want: 200 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			claim := newClaim("c1", func(c *extv1beta1.SandboxClaim) {
				c.CreationTimestamp = metav1.NewTime(now.Add(-tc.age))
			})
			f := newFixture(t, newTemplate(), newPool(), claim, newMember("pool-starting", memberStarting, time.Minute))
			if requeue := f.runOK("c1"); requeue != tc.want {
				t.Errorf("requeue %s, want %s", requeue, tc.want)
			}
			f.expectActions()
			f.expectEvents()
		})
	}
}

// A conflict means another claim (or the pool) changed the candidate
// first: the claim moves on to the next one in the same sync.
func TestSyncConflictMovesToNextCandidate(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim,
		newMember("pool-a", memberReady, 10*time.Minute),
		newMember("pool-b", memberReady, 5*time.Minute))
	conflictOn(f, "pool-a")

	f.runOK("c1")
	f.expectActions(takeover(t, claim, "pool-a"), takeover(t, claim, "pool-b"), boundStatus(t, "c1", "pool-b"))
	f.expectEvents("Normal SandboxAdopted Adopted warm Sandbox pool-b from pool pool")
}

// coldSandbox is the Sandbox the cold path creates for claim from
// newTemplate, with env added to its container.
func coldSandbox(claim *extv1beta1.SandboxClaim, env ...corev1.EnvVar) *agentsv1beta1.Sandbox {
	return &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: claim.Name,
			Labels: map[string]string{
				agentsv1beta1.SandboxIDLabel:              string(claim.UID),
				agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeCold,
				agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
			},
			Annotations:     map[string]string{agentsv1beta1.SandboxTemplateRefAnnotation: "python"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
			Spec: corev1.PodSpec{
				Containers:                   []corev1.Container{{Name: "agent", Image: "python:3.13", Env: env}},
				AutomountServiceAccountToken: ptr.To(false),
			},
		}}},
	}
}

func createSandbox(sb *agentsv1beta1.Sandbox) action {
	return action{Verb: "create", Resource: "sandboxes", Namespace: ns, Name: sb.Name, Body: sb}
}

// A claim without a Sandbox yet (the cold one it just created, not
// started) says so, and why it went cold (a WarmStart reason).
func notReadyStatus(t *testing.T, claim, sandbox, cold string) action {
	return patchClaimStatus(t, claim, `{"status":{
		"conditions":[{"type":"Ready","status":"False","reason":"SandboxNotReady","message":"Sandbox is not ready","observedGeneration":1,"lastTransitionTime":"`+now.Format(time.RFC3339)+`"},
			{"type":"WarmStart","status":"False","reason":"`+cold+`","message":"`+coldMessages[cold]+`","observedGeneration":1,"lastTransitionTime":"`+now.Format(time.RFC3339)+`"}],
		"sandbox":{"name":"`+sandbox+`"}}}`)
}

// Five candidates lost in a row is the per-sync bound: the claim stops
// chasing the pool and goes cold.
func TestSyncFiveConflictsThenCold(t *testing.T) {
	claim := newClaim("c1")
	objs := []runtime.Object{newTemplate(), newPool(), claim}
	names := []string{"pool-a", "pool-b", "pool-c", "pool-d", "pool-e", "pool-f"}
	for i, name := range names {
		objs = append(objs, newMember(name, memberReady, time.Duration(10-i)*time.Minute))
	}
	f := newFixture(t, objs...)
	conflictOn(f, names...)

	f.runOK("c1")
	var want []action
	for _, name := range names[:maxAdoptAttempts] {
		want = append(want, takeover(t, claim, name))
	}
	want = append(want, createSandbox(coldSandbox(claim)), notReadyStatus(t, "c1", "c1", extv1beta1.ColdReasonNoReadyMember))
	f.expectActions(want...)
	f.expectEvents("Normal SandboxProvisioned Created Sandbox c1 from template python")
}

// A claim with env on a template that does not opt in to warm env
// never takes a warm member (a running Pod's env cannot change): it
// creates its own Sandbox with the variable injected, and says why.
func TestSyncEnvForcesCold(t *testing.T) {
	claim := newClaim("c1", func(c *extv1beta1.SandboxClaim) {
		c.Spec.Env = []extv1beta1.EnvVar{{Name: "TOKEN", Value: "x"}}
	})
	tmpl := newTemplate()
	tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
	f := newFixture(t, tmpl, newPool(), claim, newMember("pool-a", memberReady, time.Minute))

	f.runOK("c1")
	f.expectActions(createSandbox(coldSandbox(claim, corev1.EnvVar{Name: "TOKEN", Value: "x"})),
		notReadyStatus(t, "c1", "c1", extv1beta1.ColdReasonWarmEnvNotEnabled))
	f.expectEvents("Normal SandboxProvisioned Created Sandbox c1 from template python",
		"Normal ColdStart WarmEnvNotEnabled: "+coldMessages[extv1beta1.ColdReasonWarmEnvNotEnabled])
}

// boundClaim is a claim whose status names its cold Sandbox, and that
// Sandbox, Ready.
func boundClaim(name string, mutate ...func(*extv1beta1.SandboxClaim)) (*extv1beta1.SandboxClaim, *agentsv1beta1.Sandbox) {
	claim := newClaim(name, mutate...)
	sb := coldSandbox(claim)
	sb.UID = claim.UID + "-sandbox"
	sb.ResourceVersion = "5"
	sb.Status.PodIPs = []string{"127.0.0.10"}
	sb.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: agentsv1beta1.SandboxReasonDependenciesReady, LastTransitionTime: readySince}}
	claim.Status = extv1beta1.SandboxClaimStatus{
		Conditions:    []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: agentsv1beta1.SandboxReasonDependenciesReady, ObservedGeneration: 1, LastTransitionTime: readySince}},
		SandboxStatus: extv1beta1.SandboxStatus{Name: sb.Name, PodIPs: sb.Status.PodIPs},
	}
	return claim, sb
}

func expiring(policy extv1beta1.ShutdownPolicy) func(*extv1beta1.SandboxClaim) {
	return func(c *extv1beta1.SandboxClaim) {
		c.Spec.Lifecycle = &extv1beta1.Lifecycle{ShutdownTime: ptr.To(metav1.NewTime(now.Add(-time.Second))), ShutdownPolicy: policy}
	}
}

// Expiry takes two passes, so the expiry is recorded before anything is
// deleted: first Ready=False/ClaimExpired (the Sandbox still named), then
// the policy. Retain deletes the Sandbox (UID precondition) and keeps the
// claim; Delete deletes the claim (UID precondition, background).
func TestSyncExpiryTwoPasses(t *testing.T) {
	// The first pass changes only Ready (a merge patch carries what
	// changed): the Sandbox is still there and still named.
	expiredStatus := func(name string) action {
		return patchClaimStatus(t, name, `{"status":{
			"conditions":[{"type":"Ready","status":"False","reason":"ClaimExpired","message":"Claim expired. Sandbox cleanup initiated.","observedGeneration":1,"lastTransitionTime":"`+now.Format(time.RFC3339)+`"}]}}`)
	}
	// markExpired is the claim as the informer shows it after the first
	// pass's write.
	markExpired := func(claim *extv1beta1.SandboxClaim) *extv1beta1.SandboxClaim {
		claim = claim.DeepCopy()
		claim.ResourceVersion = "11"
		claim.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: extv1beta1.ClaimExpiredReason,
			Message: "Claim expired. Sandbox cleanup initiated.", ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(now)}}
		return claim
	}

	t.Run("Retain", func(t *testing.T) {
		claim, sb := boundClaim("c1", expiring(extv1beta1.ShutdownPolicyRetain))
		f := newFixture(t, newTemplate(), newPool(), claim, sb)

		if requeue := f.runOK("c1"); requeue != expiredRequeue {
			t.Errorf("first pass: requeue %s, want %s", requeue, expiredRequeue)
		}
		f.expectActions(expiredStatus("c1"))
		f.expectEvents("Normal ClaimExpired Claim expired")

		f.cache(markExpired(claim))
		if requeue := f.runOK("c1"); requeue != 0 {
			t.Errorf("second pass: requeue %s, want none", requeue)
		}
		f.expectActions(
			action{Verb: "delete", Resource: "sandboxes", Namespace: ns, Name: "c1", Body: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &sb.UID}}},
			patchClaimStatus(t, "c1", `{"status":{
				"conditions":[{"message":"Claim expired. Sandbox deleted (ShutdownPolicy=Retain).","observedGeneration":1,"reason":"ClaimExpired","status":"False","type":"Ready","lastTransitionTime":"`+now.Format(time.RFC3339)+`"}],
				"sandbox":{"name":null,"podIPs":null}}}`))
		f.expectEvents()
	})

	t.Run("Delete", func(t *testing.T) {
		claim, sb := boundClaim("c1", expiring(extv1beta1.ShutdownPolicyDelete))
		f := newFixture(t, newTemplate(), newPool(), claim, sb)

		f.runOK("c1")
		f.expectActions(expiredStatus("c1"))
		f.expectEvents("Normal ClaimExpired Claim expired")

		f.cache(markExpired(claim))
		f.runOK("c1")
		background := metav1.DeletePropagationBackground
		f.expectActions(action{Verb: "delete", Resource: "sandboxclaims", Namespace: ns, Name: "c1",
			Body: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &claim.UID}, PropagationPolicy: &background}})
		f.expectEvents("Normal ClaimExpired Deleting Claim (ShutdownPolicy=Delete)")
	})
}

// A second pass on the stale cached claim (its status write not shown
// yet, the taken Sandbox shown) in a later second of the clock sends
// nothing: it starts from the status written, so WarmStart keeps the
// time it was written with. Before, one claim in four at 10/s got a
// second status patch that differed only in that time.
func TestSyncSecondPassWhileTheClaimCacheLagsWritesNothing(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim, newMember("pool-ready", memberReady, 5*time.Minute))
	f.runOK("c1")
	f.expectActions(takeover(t, claim, "pool-ready"), boundStatus(t, "c1", "pool-ready"))

	taken, err := f.agents.AgentsV1beta1().Sandboxes(ns).Get(t.Context(), "pool-ready", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.cache(taken)
	f.clock.Step(1500 * time.Millisecond)
	f.runOK("c1")
	f.expectActions()
}
