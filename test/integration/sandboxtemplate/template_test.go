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

// Package sandboxtemplate proves the template controller's NetworkPolicy
// on a real API server.
package sandboxtemplate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const timeout = 30 * time.Second

func newTemplate(ns, name string) *extv1beta1.SandboxTemplate {
	return &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python"}}}},
		}},
	}
}

// secureDefault is the policy of the API spec, written out by hand rather
// than by calling the code under test.
func secureDefault(template string) networkingv1.NetworkPolicySpec {
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{
			"agents.x-k8s.io/sandbox-template-ref-hash": agentsv1beta1.NameHash(template),
		}},
		PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "agent-sandbox-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "sandbox-router"}},
		}}}},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fc00::/7", "fe80::/10"}}},
		}}},
	}
}

func waitPolicy(t *testing.T, env *framework.Env, name string, cond func(*networkingv1.NetworkPolicy, error) bool) *networkingv1.NetworkPolicy {
	t.Helper()
	var np *networkingv1.NetworkPolicy
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		np, lastErr = env.Kube.NetworkingV1().NetworkPolicies(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		return cond(np, lastErr), nil
	})
	if err != nil {
		t.Fatalf("networkpolicy %s never reached the expected state (last: %+v, %v)", name, np, lastErr)
	}
	return np
}

func TestSecureDefaultPolicy(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandboxTemplate)
	ctx := framework.Context(t, time.Minute)
	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)

	tmpl, err := templates.Create(ctx, newTemplate(env.Namespace, "python"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np := waitPolicy(t, env, "python-network-policy", func(np *networkingv1.NetworkPolicy, err error) bool { return err == nil })
	if diff := cmp.Diff(secureDefault("python"), np.Spec); diff != "" {
		t.Errorf("policy spec (-want,+got):\n%s", diff)
	}
	ref := metav1.GetControllerOf(np)
	if ref == nil || ref.UID != tmpl.UID || ref.Kind != "SandboxTemplate" {
		t.Errorf("policy controller = %+v, want the template", ref)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, err := templates.Get(ctx, "python", metav1.GetOptions{})
		return err == nil && got.Labels[agentsv1beta1.SandboxTemplateRefHashLabel] == agentsv1beta1.NameHash("python"), nil
	})
	if err != nil {
		t.Error("the template never got its own name-hash label")
	}

	// A hand edit is put back.
	np.Spec.Egress = nil
	if _, err := env.Kube.NetworkingV1().NetworkPolicies(env.Namespace).Update(ctx, np, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, env, "python-network-policy", func(np *networkingv1.NetworkPolicy, err error) bool {
		return err == nil && cmp.Equal(secureDefault("python"), np.Spec)
	})
}

func TestCustomRulesThenUnmanaged(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandboxTemplate)
	ctx := framework.Context(t, time.Minute)
	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)

	port := intstr.FromInt32(443)
	tmpl := newTemplate(env.Namespace, "web")
	tmpl.Spec.NetworkPolicy = &extv1beta1.NetworkPolicySpec{
		Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}},
	}
	if _, err := templates.Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("web")}},
		PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
		Egress:      tmpl.Spec.NetworkPolicy.Egress,
	}
	np := waitPolicy(t, env, "web-network-policy", func(np *networkingv1.NetworkPolicy, err error) bool { return err == nil })
	// The API server defaults the port's protocol to TCP.
	want.Egress[0].Ports[0].Protocol = np.Spec.Egress[0].Ports[0].Protocol
	if diff := cmp.Diff(want, np.Spec); diff != "" {
		t.Errorf("custom policy (-want,+got): no ingress rule means deny all inbound\n%s", diff)
	}

	got, err := templates.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.NetworkPolicyManagement = extv1beta1.NetworkPolicyManagementUnmanaged
	if _, err := templates.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, env, "web-network-policy", func(_ *networkingv1.NetworkPolicy, err error) bool { return apierrors.IsNotFound(err) })
}

// TestForeignPolicyIsLeftAlone: a user's NetworkPolicy under a template's
// policy name is never changed; the template gets a Warning Event and is
// then left alone (no retry with backoff, which would fail a sync about
// ten times in five seconds, each failure emitting the Event anew); once
// the user deletes the policy the template gets its own.
func TestForeignPolicyIsLeftAlone(t *testing.T) {
	env := framework.Setup(t)
	requests := &framework.RequestLog{}
	ctrls := framework.StartControllersWithOptions(t, env, framework.ControllerOptions{WrapTransport: requests.Wrap},
		framework.ControllerSandboxTemplate)
	ctx := framework.Context(t, time.Minute)

	mine := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shared-network-policy"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}},
	}
	if _, err := env.Kube.NetworkingV1().NetworkPolicies(env.Namespace).Create(ctx, mine, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tmpl, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, newTemplate(env.Namespace, "shared"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conflictEvents := func() []eventsv1.Event {
		events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []eventsv1.Event
		for _, e := range events.Items {
			if e.Reason == "NetworkPolicyConflict" && e.Regarding.UID == tmpl.UID {
				out = append(out, e)
			}
		}
		return out
	}
	// The refusal is reported as a Warning event.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return len(conflictEvents()) > 0, nil
	})
	if err != nil {
		t.Fatal("no NetworkPolicyConflict event")
	}

	// Let the pass woken by the template's own label stamp run, then
	// watch a quiet stretch.
	time.Sleep(time.Second)
	mark, before := requests.Mark(), ctrls.Syncs(t, framework.ControllerSandboxTemplate)
	time.Sleep(5 * time.Second)
	sent, after := requests.Since(mark), ctrls.Syncs(t, framework.ControllerSandboxTemplate)
	t.Logf("in 5 s of conflict: %v syncs, %v failed, requests %v", after.Total-before.Total, after.Errors-before.Errors, sent)
	if after.Errors > before.Errors {
		t.Errorf("%v failed template syncs while nothing changed: the queue retries a conflict only a user can settle", after.Errors-before.Errors)
	}
	if d := after.Total - before.Total; d > 1 {
		t.Errorf("%v template syncs while nothing changed, want at most 1", d)
	}
	if len(sent) > 1 {
		t.Errorf("the controller sent %d requests while nothing changed, want at most 1: %v", len(sent), sent)
	}
	// An Event recorded again becomes a series (count 2, and more).
	var got []string
	for _, e := range conflictEvents() {
		got = append(got, fmt.Sprintf("%s %s, series %v", e.Type, e.Note, e.Series != nil))
	}
	want := []string{"Warning NetworkPolicy shared-network-policy exists and is not controlled by this template; refusing to change it, series false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conflict events (-want,+got): one Warning, not repeated\n%s", diff)
	}

	np, err := env.Kube.NetworkingV1().NetworkPolicies(env.Namespace).Get(ctx, "shared-network-policy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if metav1.GetControllerOf(np) != nil || !cmp.Equal(mine.Spec.PolicyTypes, np.Spec.PolicyTypes) || len(np.Spec.Egress) != 0 {
		t.Errorf("a user's NetworkPolicy was changed: %+v", np)
	}

	// The user frees the name: its delete event wakes the template.
	if err := env.Kube.NetworkingV1().NetworkPolicies(env.Namespace).Delete(ctx, "shared-network-policy", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, env, "shared-network-policy", func(np *networkingv1.NetworkPolicy, err error) bool {
		return err == nil && metav1.IsControlledBy(np, tmpl)
	})
}
