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
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// createPoolOnly creates the template and an empty pool with the given
// strategy, and returns them as stored.
func createPoolOnly(t *testing.T, env *framework.Env, strategy extv1beta1.SandboxWarmPoolUpdateStrategyType) (*extv1beta1.SandboxWarmPool, *extv1beta1.SandboxTemplate) {
	t.Helper()
	ctx := context.Background()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "python"},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}},
			},
		}},
	}
	tmpl, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: "pool"},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(int32(0)), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
	if strategy != "" {
		pool.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{Type: strategy}
	}
	pool, err = env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pool, tmpl
}

// forgeMember creates, as a tenant of the pool's namespace could, a
// Sandbox that names the pool as its controller and carries every label
// a member has (the hash labels of the current template included), but
// runs the attacker's image; it waits until the forgery has a Pod IP, so
// that nothing but the claim's checks keeps it from being taken.
func forgeMember(t *testing.T, env *framework.Env, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate) *agentsv1beta1.Sandbox {
	t.Helper()
	ctx := framework.Context(t, time.Minute)
	hashes, err := sandboxpolicy.HashTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	forged := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Labels: map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash(pool.Name),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
			agentsv1beta1.SandboxTemplateHashLabel:    hashes.Blueprint,
			agentsv1beta1.SandboxPodTemplateHashLabel: hashes.PodTemplate,
			agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
			agentsv1beta1.CreatedByLabel:              agentsv1beta1.CreatedByController,
		}, Annotations: map[string]string{agentsv1beta1.SandboxTemplateRefAnnotation: tmpl.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	forged.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate:latest"
	sandboxpolicy.SecureDefaults{}.Apply(tmpl, &forged.Spec.PodTemplate.Spec)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var sb *agentsv1beta1.Sandbox
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sb, err = env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "forged", metav1.GetOptions{})
		return err == nil && len(sb.Status.PodIPs) > 0, nil
	})
	if err != nil {
		t.Fatal("the forged member never got a pod IP")
	}
	return sb
}

// claimMustNotTakeForgery creates a claim next to a forged member and
// checks that the claim gets a Sandbox of its own and the forgery keeps
// its (forged) controller.
func claimMustNotTakeForgery(t *testing.T, env *framework.Env, forged *agentsv1beta1.Sandbox) {
	t.Helper()
	ctx := framework.Context(t, time.Minute)
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim("victim"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitClaim(t, env, "victim", "bound", func(c *extv1beta1.SandboxClaim) bool { return c.Status.SandboxStatus.Name != "" })
	if got.Status.SandboxStatus.Name == forged.Name {
		t.Errorf("the claim was handed the forged member, which runs %s", forged.Spec.PodTemplate.Spec.Containers[0].Image)
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, forged.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(sb); ref == nil || ref.Kind != "SandboxWarmPool" {
		t.Errorf("the forged member changed hands: %+v", ref)
	}
	mine, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, got.Status.SandboxStatus.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if image := mine.Spec.PodTemplate.Spec.Containers[0].Image; image != "python:3.13" {
		t.Errorf("the claim's Sandbox runs %s, want the template's python:3.13", image)
	}
}

// TestAttackForgedPoolMemberOnReplenish: under the default strategy a
// Sandbox a tenant forged as a member of the pool (controller reference to
// the pool's UID, every member label) was handed to the next claim with
// the tenant's pod spec. The pool controller is not running here, so only
// the claim's own takeover check stands between the two.
func TestAttackForgedPoolMemberOnReplenish(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append([]string{framework.ControllerSandbox}, claims...)...)
	pool, tmpl := createPoolOnly(t, env, "")
	forged := forgeMember(t, env, pool, tmpl)
	claimMustNotTakeForgery(t, env, forged)
}

// TestAttackForgedPoolMemberRecreate: under Recreate the claim compared
// the member's template-hash label with the template's and, when equal,
// skipped comparing the spec; the label is the forger's to write.
func TestAttackForgedPoolMemberRecreate(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append([]string{framework.ControllerSandbox}, claims...)...)
	pool, tmpl := createPoolOnly(t, env, extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType)
	forged := forgeMember(t, env, pool, tmpl)
	claimMustNotTakeForgery(t, env, forged)
}

// TestAttackPrecreatedClaimSandbox: a claim's UID is visible to everyone
// who can read claims; a tenant who creates a Sandbox naming that claim
// as its controller before the claim controller gets to it had it taken
// as the claim's binding, with the tenant's pod spec. Under the claim's
// own name the claim now says so in its Ready condition and an Event, and
// does not retry in a loop; under another name it is ignored and the
// claim gets its own Sandbox.
func TestAttackPrecreatedClaimSandbox(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandbox, framework.ControllerSandboxWarmPool)
	ctx := framework.Context(t, 2*time.Minute)
	_, tmpl := createPoolOnly(t, env, "")

	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)
	plant := func(claimName, sandboxName string) {
		claim, err := claimsClient.Create(ctx, newClaim(claimName), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sb := &agentsv1beta1.Sandbox{
			ObjectMeta: metav1.ObjectMeta{Name: sandboxName,
				Labels: map[string]string{
					agentsv1beta1.SandboxIDLabel:              string(claim.UID),
					agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeCold,
					agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
				},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)}},
			Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
		}
		sb.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate:latest"
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	plant("victim", "victim")         // the name the cold path would use
	plant("victim2", "victim2-decoy") // any other name
	// The claim controller starts only now, so the forgeries are there
	// first, as a tenant watching claims would manage at least sometimes.
	framework.StartControllers(t, env, claims...)

	named := waitClaim(t, env, "victim", "refusing the forgery", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return c.Status.SandboxStatus.Name != "" || (r != nil && strings.Contains(r.Message, "was not created by it"))
	})
	if named.Status.SandboxStatus.Name != "" {
		t.Errorf("claim victim is bound to %q, the tenant's Sandbox", named.Status.SandboxStatus.Name)
	}
	other := waitClaim(t, env, "victim2", "bound", func(c *extv1beta1.SandboxClaim) bool { return c.Status.SandboxStatus.Name != "" })
	if other.Status.SandboxStatus.Name != "victim2" {
		t.Errorf("claim victim2 is bound to %q; want its own cold Sandbox victim2", other.Status.SandboxStatus.Name)
	}

	// Refused once, not retried in a loop: the claim is not rewritten.
	named, err := claimsClient.Get(ctx, "victim", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	again, err := claimsClient.Get(ctx, "victim", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != named.ResourceVersion {
		t.Errorf("the refused claim keeps being rewritten: %+v", again.Status)
	}
	events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	warned := 0
	for _, e := range events.Items {
		if e.Reason == "UntrustedSandbox" && e.Regarding.Kind == "SandboxClaim" {
			warned++
		}
	}
	if warned < 2 {
		t.Errorf("%d UntrustedSandbox Events, want one per refused Sandbox", warned)
	}
}

// TestOnReplenishServesEarlierMembers: what the takeover check must not
// cost. Under OnReplenish a member the pool made from an earlier template
// is still handed out warm (the pool's record of what it created vouches
// for it, not its labels).
func TestOnReplenishServesEarlierMembers(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, timeout)
	setupPool(t, env, 1)

	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)
	tmpl, err := templates.Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the pool sees the change and keeps its member
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim("c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitClaim(t, env, "c", "bound", func(c *extv1beta1.SandboxClaim) bool { return c.Status.SandboxStatus.Name != "" })
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, got.Status.SandboxStatus.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lt, image := sb.Labels[agentsv1beta1.LaunchTypeLabel], sb.Spec.PodTemplate.Spec.Containers[0].Image; lt != agentsv1beta1.LaunchTypeWarm || image != "python:3.13" {
		t.Errorf("claim got a %s Sandbox running %s; want the earlier warm member (python:3.13)", lt, image)
	}
	if _, still := sb.Annotations[agentsv1beta1.WarmPoolMemberAnnotation]; still {
		t.Error("the taken member still carries the pool member annotation")
	}
}

// TestAttackCrossNamespaceAdoption runs the controllers cluster-wide, as
// shipped, so that everything in namespace B is in their caches, and
// plants in B what would confuse a check that forgot the namespace: a
// Sandbox with the exact spec and labels of a member of A's pool and a
// controller reference to that pool's UID, a Sandbox naming A's claim as
// its controller (planted before the claim controller starts, so it is
// there first), and a Pod named like A's pool member naming that member
// as its controller. Nothing of B's may be adopted, reported in A's claim
// status, or counted by A's pool, and B's own pool (same names, so the
// same label hashes) is untouched.
//
// The planted owner references use an API version that is not served:
// the controllers compare group, kind and UID only (references written by
// older versions must still count), while the garbage collector, unable to
// map the version, leaves the objects alone instead of deleting them as
// dependents of an owner missing from their namespace, which it would do
// within a second and so hide what this test looks at.
func TestAttackCrossNamespaceAdoption(t *testing.T) {
	a := framework.Setup(t)
	b := framework.Setup(t)
	clusterWide := framework.ControllerOptions{ClusterWide: true}
	framework.StartControllersWithOptions(t, a, clusterWide, backend...)
	ctx := framework.Context(t, timeout)
	setupPool(t, a, 1)
	setupPool(t, b, 1)
	poolA, err := a.Agents.ExtensionsV1beta1().SandboxWarmPools(a.Namespace).Get(ctx, "pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmplA, err := a.Agents.ExtensionsV1beta1().SandboxTemplates(a.Namespace).Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := sandboxpolicy.HashTemplate(tmplA)
	if err != nil {
		t.Fatal(err)
	}
	unservedRef := func(owner metav1.Object, gvk schemaGVK) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: gvk.group + "/v1", Kind: gvk.kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}
	}

	// A member of A's pool in every respect but its namespace.
	twin := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "twin", Labels: map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash("pool"),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
			agentsv1beta1.SandboxTemplateHashLabel:    hashes.Blueprint,
			agentsv1beta1.SandboxPodTemplateHashLabel: hashes.PodTemplate,
			agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
		}, Annotations: map[string]string{agentsv1beta1.WarmPoolMemberAnnotation: string(poolA.UID)},
			OwnerReferences: []metav1.OwnerReference{unservedRef(poolA, schemaGVK{extv1beta1.GroupName, "SandboxWarmPool"})}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmplA.Spec.SandboxBlueprint.DeepCopy()},
	}
	sandboxpolicy.SecureDefaults{}.Apply(tmplA, &twin.Spec.PodTemplate.Spec)
	if _, err := b.Agents.AgentsV1beta1().Sandboxes(b.Namespace).Create(ctx, twin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sb, err := b.Agents.AgentsV1beta1().Sandboxes(b.Namespace).Get(ctx, "twin", metav1.GetOptions{})
		return err == nil && len(sb.Status.PodIPs) > 0, nil
	})
	if err != nil {
		t.Fatal("the twin in B never got a pod IP")
	}

	// A Pod in B named like A's member, naming that member as its controller.
	var memberA agentsv1beta1.Sandbox
	list, err := a.Agents.AgentsV1beta1().Sandboxes(a.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("A's pool should have one member: %v", err)
	}
	memberA = list.Items[0]
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: memberA.Name, Labels: map[string]string{agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash(memberA.Name)},
			OwnerReferences: []metav1.OwnerReference{unservedRef(&memberA, schemaGVK{agentsv1beta1.GroupName, "Sandbox"})}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "attacker/exfiltrate:latest"}}},
	}
	if _, err := b.Kube.CoreV1().Pods(b.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	claimA, err := a.Agents.ExtensionsV1beta1().SandboxClaims(a.Namespace).Create(ctx, newClaim("victim"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// In B, a Sandbox naming A's claim as its controller, with the claim's
	// name and exactly what the claim would get.
	decoy := twin.DeepCopy()
	decoy.ObjectMeta = metav1.ObjectMeta{Name: "victim", OwnerReferences: []metav1.OwnerReference{unservedRef(claimA, schemaGVK{extv1beta1.GroupName, "SandboxClaim"})}}
	if _, err := b.Agents.AgentsV1beta1().Sandboxes(b.Namespace).Create(ctx, decoy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the controllers' caches have it all
	framework.StartControllersWithOptions(t, a, clusterWide, claims...)

	bound := waitClaim(t, a, "victim", "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionTrue
	})
	mine, err := a.Agents.AgentsV1beta1().Sandboxes(a.Namespace).Get(ctx, bound.Status.SandboxStatus.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim status names %q, which is not a Sandbox of namespace A: %v", bound.Status.SandboxStatus.Name, err)
	}
	// Let the controllers see it all (A's pool refills meanwhile).
	waitPoolReady(t, a, 1)
	time.Sleep(2 * time.Second)

	mine, err = a.Agents.AgentsV1beta1().Sandboxes(a.Namespace).Get(ctx, mine.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(mine); ref == nil || ref.UID != claimA.UID {
		t.Errorf("A's claimed Sandbox is controlled by %+v", ref)
	}
	claimNow, err := a.Agents.ExtensionsV1beta1().SandboxClaims(a.Namespace).Get(ctx, "victim", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claimNow.Status.SandboxStatus.Name != mine.Name || strings.Join(claimNow.Status.SandboxStatus.PodIPs, ",") != strings.Join(mine.Status.PodIPs, ",") {
		t.Errorf("claim status %+v does not report A's Sandbox %s (%v)", claimNow.Status.SandboxStatus, mine.Name, mine.Status.PodIPs)
	}
	podB, err := b.Kube.CoreV1().Pods(b.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sandboxesA, err := a.Agents.AgentsV1beta1().Sandboxes(a.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := 0
	for _, sb := range sandboxesA.Items {
		for _, ip := range sb.Status.PodIPs {
			if podB.Status.PodIP != "" && ip == podB.Status.PodIP {
				t.Errorf("A's Sandbox %s reports the IP of B's Pod (%s)", sb.Name, ip)
			}
		}
		if ref := metav1.GetControllerOf(&sb); ref != nil && ref.UID == poolA.UID {
			owned++
		}
	}
	if owned != 1 {
		t.Errorf("A's pool controls %d Sandboxes in A, want 1", owned)
	}
	if ref := metav1.GetControllerOf(podB); ref == nil || ref.UID != memberA.UID || len(podB.OwnerReferences) != 1 {
		t.Errorf("B's Pod changed owners: %+v", podB.OwnerReferences)
	}
	for name, want := range map[string]types.UID{"twin": poolA.UID, "victim": claimA.UID} {
		sb, err := b.Agents.AgentsV1beta1().Sandboxes(b.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("B's Sandbox %s: %v", name, err)
		}
		if ref := metav1.GetControllerOf(sb); ref == nil || ref.UID != want || len(sb.OwnerReferences) != 1 {
			t.Errorf("B's Sandbox %s changed owners: %+v", name, sb.OwnerReferences)
		}
		if _, still := sb.Labels[agentsv1beta1.WarmPoolSandboxLabel]; name == "twin" && !still {
			t.Errorf("B's twin was relabelled as taken: %v", sb.Labels)
		}
	}
	poolNow, err := a.Agents.ExtensionsV1beta1().SandboxWarmPools(a.Namespace).Get(ctx, "pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if poolNow.Status.Replicas != 1 || poolNow.Status.ReadyReplicas != 1 {
		t.Errorf("A's pool counts %d members (%d ready); it has 1", poolNow.Status.Replicas, poolNow.Status.ReadyReplicas)
	}
	// B's own pool: its status its own, its member its own.
	waitPoolReady(t, b, 1)
	listB, err := b.Agents.AgentsV1beta1().Sandboxes(b.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range listB.Items {
		if ref := metav1.GetControllerOf(&sb); ref != nil && ref.Kind == "SandboxClaim" && ref.UID != claimA.UID {
			t.Errorf("B's Sandbox %s was taken by a claim: %+v", sb.Name, ref)
		}
	}
}

type schemaGVK struct{ group, kind string }
