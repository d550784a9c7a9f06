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

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// createPool makes a template and a warm pool of replicas from it.
func createPool(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := agents.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: podTemplate()}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := agents.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxWarmPoolSpec{
			Replicas:    ptr.To(replicas),
			TemplateRef: extv1beta1.SandboxTemplateRef{Name: name},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// poolMembers lists the Sandboxes the pool controls.
func poolMembers(ctx context.Context, ns, pool string) ([]agentsv1beta1.Sandbox, error) {
	list, err := agents.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []agentsv1beta1.Sandbox
	for i := range list.Items {
		sb := &list.Items[i]
		if ref := metav1.GetControllerOf(sb); ref != nil && ref.Kind == "SandboxWarmPool" && ref.Name == pool {
			out = append(out, *sb)
		}
	}
	return out, nil
}

// waitPoolReady waits until the pool reports n ready members and controls
// exactly n Sandboxes.
func waitPoolReady(t *testing.T, ns, pool string, n int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("pool %s with %d ready members", pool, n), func(ctx context.Context) (bool, error) {
		p, err := agents.ExtensionsV1beta1().SandboxWarmPools(ns).Get(ctx, pool, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		members, err := poolMembers(ctx, ns, pool)
		if err != nil {
			return false, err
		}
		return p.Status.ReadyReplicas == n && p.Status.Replicas == n && len(members) == int(n), nil
	})
}

func createClaim(t *testing.T, ns, name, pool string, lifecycle *extv1beta1.Lifecycle) {
	t.Helper()
	if _, err := agents.ExtensionsV1beta1().SandboxClaims(ns).Create(context.Background(), &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxClaimSpec{
			WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: pool},
			Lifecycle:   lifecycle,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitClaimReady waits for Ready and returns the claim and the Sandbox it
// controls.
func waitClaimReady(t *testing.T, ns, name string) (*extv1beta1.SandboxClaim, *agentsv1beta1.Sandbox) {
	t.Helper()
	var claim *extv1beta1.SandboxClaim
	eventually(t, "claim "+name+" Ready", func(ctx context.Context) (bool, error) {
		var err error
		claim, err = agents.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return isTrue(claim.Status.Conditions, agentsv1beta1.SandboxConditionReady) && claim.Status.SandboxStatus.Name != "", nil
	})
	sb, err := getSandbox(context.Background(), ns, claim.Status.SandboxStatus.Name)
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(sb); ref == nil || ref.UID != claim.UID {
		t.Fatalf("Sandbox %s is not controlled by claim %s: %v", sb.Name, name, sb.OwnerReferences)
	}
	return claim, sb
}

// TestWarmPoolFillAndScale: a pool fills to its replicas, never owning
// more, and follows the scale subresource down and up.
func TestWarmPoolFillAndScale(t *testing.T) {
	ns := newNamespace(t)
	createPool(t, ns, "fill", 3)
	waitPoolReady(t, ns, "fill", 3)

	ctx := context.Background()
	scale := func(n int32) {
		s, err := agents.ExtensionsV1beta1().SandboxWarmPools(ns).GetScale(ctx, "fill", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = n
		if _, err := agents.ExtensionsV1beta1().SandboxWarmPools(ns).UpdateScale(ctx, "fill", s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	scale(1)
	waitPoolReady(t, ns, "fill", 1)
	scale(2)
	waitPoolReady(t, ns, "fill", 2)
}

// TestWarmClaim: a claim on a full pool takes one of its ready members
// (created before the claim), and the pool refills.
func TestWarmClaim(t *testing.T) {
	ns := newNamespace(t)
	createPool(t, ns, "warm", 2)
	waitPoolReady(t, ns, "warm", 2)
	ctx := context.Background()
	before, err := poolMembers(ctx, ns, "warm")
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]bool{}
	for _, sb := range before {
		members[sb.Name] = true
	}

	createClaim(t, ns, "warm-claim", "warm", nil)
	claim, sb := waitClaimReady(t, ns, "warm-claim")
	if !members[sb.Name] {
		t.Errorf("claim got Sandbox %s, not one of the pool's ready members %v", sb.Name, members)
	}
	if sb.Labels[agentsv1beta1.WarmPoolSandboxLabel] != "" {
		t.Errorf("adopted Sandbox still carries %s", agentsv1beta1.WarmPoolSandboxLabel)
	}
	if len(claim.Status.SandboxStatus.PodIPs) == 0 {
		t.Error("claim status has no pod IPs")
	}
	waitPoolReady(t, ns, "warm", 2)
}

// TestColdClaim: with nothing warm, the claim gets a new Sandbox named
// after it, from the pool's template.
func TestColdClaim(t *testing.T) {
	ns := newNamespace(t)
	createPool(t, ns, "cold", 0)
	createClaim(t, ns, "cold-claim", "cold", nil)
	_, sb := waitClaimReady(t, ns, "cold-claim")
	if sb.Name != "cold-claim" {
		t.Errorf("cold Sandbox named %q, want the claim's name", sb.Name)
	}
	if got := sb.Labels[agentsv1beta1.LaunchTypeLabel]; got != agentsv1beta1.LaunchTypeCold {
		t.Errorf("launch type label %q, want %q", got, agentsv1beta1.LaunchTypeCold)
	}
}

// TestClaimExpiry: at the claim's shutdownTime, Delete removes the claim
// and its Sandbox goes with it; Retain keeps the claim, expired, and
// deletes the Sandbox.
func TestClaimExpiry(t *testing.T) {
	ns := newNamespace(t)
	createPool(t, ns, "expiry", 0)
	at := metav1.NewTime(time.Now().Add(20 * time.Second))
	createClaim(t, ns, "claim-delete", "expiry", &extv1beta1.Lifecycle{ShutdownTime: &at, ShutdownPolicy: extv1beta1.ShutdownPolicyDelete})
	createClaim(t, ns, "claim-retain", "expiry", &extv1beta1.Lifecycle{ShutdownTime: &at, ShutdownPolicy: extv1beta1.ShutdownPolicyRetain})
	_, deleted := waitClaimReady(t, ns, "claim-delete")
	_, retained := waitClaimReady(t, ns, "claim-retain")

	waitGone(t, "claim claim-delete", func(ctx context.Context) error {
		_, err := agents.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, "claim-delete", metav1.GetOptions{})
		return err
	})
	waitGone(t, "Sandbox "+deleted.Name, func(ctx context.Context) error {
		_, err := getSandbox(ctx, ns, deleted.Name)
		return err
	})
	eventually(t, "claim claim-retain expired with its Sandbox deleted", func(ctx context.Context) (bool, error) {
		claim, err := agents.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, "claim-retain", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := condition(claim.Status.Conditions, agentsv1beta1.SandboxConditionReady)
		_, sbErr := getSandbox(ctx, ns, retained.Name)
		return ready != nil && ready.Status == metav1.ConditionFalse &&
			ready.Reason == extv1beta1.ClaimExpiredReason && apierrors.IsNotFound(sbErr), nil
	})
}

// TestTemplateNetworkPolicy: a template gets its secure default
// NetworkPolicy, owned by it.
func TestTemplateNetworkPolicy(t *testing.T) {
	ns := newNamespace(t)
	createPool(t, ns, "netpol", 0)
	eventually(t, "the template's NetworkPolicy", func(ctx context.Context) (bool, error) {
		list, err := kube.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, np := range list.Items {
			if ref := metav1.GetControllerOf(&np); ref != nil && ref.Kind == "SandboxTemplate" && ref.Name == "netpol" {
				return true, nil
			}
		}
		return false, nil
	})
	// Unmanaged removes it.
	patch := []byte(`{"spec":{"networkPolicyManagement":"Unmanaged"}}`)
	if _, err := agents.ExtensionsV1beta1().SandboxTemplates(ns).Patch(context.Background(), "netpol", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the NetworkPolicy removed for Unmanaged", func(ctx context.Context) (bool, error) {
		list, err := kube.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, err
	})
}
