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

package sdk

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func TestCreateClaimNamedDoesNotWait(t *testing.T) {
	fc := newFakeCluster(t)
	c := fc.client(WithDefaultNamespace("team-a"))
	claim, err := c.CreateClaim(t.Context(), "pool", WithClaimName("mine"))
	if err != nil {
		t.Fatalf("CreateClaim: %v", err)
	}
	if claim.Name != "mine" {
		t.Errorf("created claim %q, want mine", claim.Name)
	}
	acts := fc.cs.Actions()
	if len(acts) != 1 || acts[0].GetVerb() != "create" {
		t.Fatalf("want exactly one create (no wait), got %v", acts)
	}
	sent := acts[0].(k8stesting.CreateAction).GetObject().(*extensionsv1beta1.SandboxClaim)
	if sent.Name != "mine" || sent.GenerateName != "" || sent.Namespace != "team-a" {
		t.Errorf("sent name %q generateName %q namespace %q, want mine, none, team-a", sent.Name, sent.GenerateName, sent.Namespace)
	}
	if _, err := c.CreateClaim(t.Context(), "pool", WithClaimName("Bad_Name")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("invalid claim name: error %v, want ErrInvalidArgument", err)
	}
	if _, err := c.CreateClaim(t.Context(), "pool", WithClaimName("mine")); !errors.Is(err, ErrClaimFailed) {
		t.Errorf("existing claim name: error %v, want ErrClaimFailed", err)
	}
}

func TestDeleteClaim(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("ns", "c1", "sb1"))
	c := fc.client()
	if err := c.DeleteClaim(t.Context(), "c1", WithNamespace("ns")); err != nil {
		t.Fatalf("DeleteClaim: %v", err)
	}
	if fc.claimExists("ns", "c1") {
		t.Error("claim still exists")
	}
	if err := c.DeleteClaim(t.Context(), "c1", WithNamespace("ns")); !errors.Is(err, ErrSandboxDeleted) {
		t.Errorf("second delete: error %v, want ErrSandboxDeleted", err)
	}
}

// patchBumpsGeneration makes the fake apply a merge patch of
// spec.operatingMode the way the API server does: it bumps the generation.
func (fc *fakeCluster) patchBumpsGeneration(patches *[]string) {
	fc.cs.PrependReactor("patch", "sandboxes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		*patches = append(*patches, string(pa.GetPatch()))
		var p struct {
			Spec struct {
				OperatingMode agentsv1beta1.SandboxOperatingMode `json:"operatingMode"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(pa.GetPatch(), &p); err != nil {
			return true, nil, err
		}
		obj, err := fc.cs.Tracker().Get(agentsv1beta1.SandboxesResource, pa.GetNamespace(), pa.GetName())
		if err != nil {
			return true, nil, err
		}
		sb := obj.(*agentsv1beta1.Sandbox).DeepCopy()
		sb.Spec.OperatingMode = p.Spec.OperatingMode
		sb.Generation++
		fc.updateSandbox(sb)
		return true, sb, nil
	})
}

func sandboxAtGen(ns, name string, gen int64, conds ...metav1.Condition) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: gen}}
	sb.Status.Conditions = conds
	return sb
}

func cond(t agentsv1beta1.ConditionType, status metav1.ConditionStatus, gen int64) metav1.Condition {
	return metav1.Condition{Type: t.String(), Status: status, Reason: "R", ObservedGeneration: gen, LastTransitionTime: metav1.Now()}
}

func TestSuspendResume(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("ns", "c1", "sb1"),
		sandboxAtGen("ns", "sb1", 1, cond(agentsv1beta1.SandboxConditionReady, metav1.ConditionTrue, 1),
			cond(agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, 1)))
	var patches []string
	fc.patchBumpsGeneration(&patches)
	c := fc.client(WithDefaultNamespace("ns"))

	// The controller's part, played after a pause so the SDK is watching:
	// the status for the new generation, set last.
	var reported atomic.Bool
	controller := func(conds ...metav1.Condition) {
		time.Sleep(20 * time.Millisecond)
		obj, err := fc.cs.Tracker().Get(agentsv1beta1.SandboxesResource, "ns", "sb1")
		if err != nil {
			t.Error(err)
			return
		}
		sb := obj.(*agentsv1beta1.Sandbox).DeepCopy()
		sb.Status.Conditions = conds
		reported.Store(true)
		fc.updateSandbox(sb)
	}

	fc.wg.Go(func() {
		controller(cond(agentsv1beta1.SandboxConditionReady, metav1.ConditionFalse, 2),
			cond(agentsv1beta1.SandboxConditionSuspended, metav1.ConditionTrue, 2))
	})
	name, err := c.Suspend(t.Context(), "c1", WithWaitForReady())
	if err != nil || name != "sb1" {
		t.Fatalf("Suspend: %q, %v; want sb1", name, err)
	}
	if !reported.Load() {
		t.Error("Suspend returned before the controller reported Suspended for the new generation")
	}

	// Ready=True at generation 2 would be stale after the resume (3).
	reported.Store(false)
	fc.wg.Go(func() {
		controller(cond(agentsv1beta1.SandboxConditionReady, metav1.ConditionTrue, 3),
			cond(agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, 3))
	})
	if _, err := c.Resume(t.Context(), "c1", WithWaitForReady()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if !reported.Load() {
		t.Error("Resume returned before the controller reported Ready for the new generation")
	}
	want := []string{`{"spec":{"operatingMode":"Suspended"}}`, `{"spec":{"operatingMode":"Running"}}`}
	if len(patches) != 2 || patches[0] != want[0] || patches[1] != want[1] {
		t.Errorf("patches %q, want %q", patches, want)
	}

	// Without a wait, nobody reports: the call returns after the patch.
	if _, err := c.Suspend(t.Context(), "c1"); err != nil {
		t.Errorf("Suspend without wait: %v", err)
	}
	// With a wait nobody answers: the ready timeout ends it.
	if _, err := c.Resume(t.Context(), "c1", WithWaitForReady(), WithReadyTimeout(50*time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Errorf("Resume with no controller: error %v, want ErrTimeout", err)
	}
}

func TestSuspendErrors(t *testing.T) {
	unbound := boundClaim("ns", "unbound", "")
	fc := newFakeCluster(t, unbound, boundClaim("ns", "orphan", "gone"))
	c := fc.client(WithDefaultNamespace("ns"))
	for claim, want := range map[string]error{
		"missing":  ErrSandboxDeleted,
		"unbound":  ErrNotReady,
		"orphan":   ErrSandboxDeleted,
		"Bad_Name": ErrInvalidArgument,
	} {
		if _, err := c.Suspend(t.Context(), claim); !errors.Is(err, want) {
			t.Errorf("Suspend(%s): error %v, want %v", claim, err, want)
		}
	}
}

func TestControlPlaneOnlyClient(t *testing.T) {
	sb := newSandboxObj("ns", "sb1", true, "127.30.1.3")
	sb.Labels = map[string]string{agentsv1beta1.LaunchTypeLabel: agentsv1beta1.LaunchTypeWarm}
	fc := newFakeCluster(t, boundClaim("ns", "c1", "sb1"), sb)
	c, err := NewClientForClientset(fc.cs, WithControlPlaneOnly(), WithDefaultNamespace("ns"))
	if err != nil {
		t.Fatalf("NewClientForClientset: %v", err)
	}
	h, err := c.Attach(t.Context(), "c1")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if h.LaunchType() != "warm" {
		t.Errorf("LaunchType %q, want warm", h.LaunchType())
	}
	if _, err := h.Run(t.Context(), "true"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Run on a control-plane-only client: error %v, want ErrInvalidArgument", err)
	}
}
