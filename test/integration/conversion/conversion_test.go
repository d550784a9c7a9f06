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

// Package conversion proves the conversion webhook on a real API server:
// the CRDs point at it on 127.0.0.1 with the CA it injected, and objects
// written in one version are read, listed and watched in the other.
package conversion

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/prometheus/client_golang/prometheus"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

func alphaSandbox(ns, name string, replicas int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas":    replicas,
			"podTemplate": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "python"}}}},
		},
	}}
}

func TestConversionThroughTheWebhook(t *testing.T) {
	env := framework.Setup(t)
	framework.StartConversionWebhook(t, env)
	ctx := framework.Context(t, 2*time.Minute)
	ns := env.Namespace
	alphaSandboxes := env.Dynamic.Resource(agentsv1alpha1.SandboxesResource).Namespace(ns)

	// The API server picks up the CRD change asynchronously.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := alphaSandboxes.Create(ctx, alphaSandbox(ns, "probe", 1), metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("v1alpha1 writes never started to work through the webhook")
	}

	t.Run("v1alpha1 write, v1beta1 read", func(t *testing.T) {
		if _, err := alphaSandboxes.Create(ctx, alphaSandbox(ns, "sleepy", 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, "sleepy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended {
			t.Errorf("replicas 0 read back as operatingMode %q, want Suspended", sb.Spec.OperatingMode)
		}
		if _, ok := sb.Annotations[agentsv1beta1.SandboxStateAnnotation]; !ok {
			t.Error("the stored object lacks the v1alpha1 state annotation")
		}
		back, err := alphaSandboxes.Get(ctx, "sleepy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r, _, _ := unstructured.NestedInt64(back.Object, "spec", "replicas"); r != 0 {
			t.Errorf("v1alpha1 read back replicas %d, want 0", r)
		}
		if _, found, _ := unstructured.NestedString(back.Object, "metadata", "annotations", agentsv1beta1.SandboxStateAnnotation); found {
			t.Error("a v1alpha1 reader sees the state annotation")
		}
	})

	t.Run("v1beta1 write, v1alpha1 read", func(t *testing.T) {
		claim := &extv1beta1.SandboxClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
			Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "shadow-pool-python"}},
		}
		fastBefore := fastReviews(t)
		if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := env.Dynamic.Resource(extv1alpha1.SandboxClaimsResource).Namespace(ns).Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tmpl, _, _ := unstructured.NestedString(got.Object, "spec", "sandboxTemplateRef", "name")
		policy, _, _ := unstructured.NestedString(got.Object, "spec", "warmpool")
		if tmpl != "python" || policy != "default" {
			t.Errorf("v1alpha1 view: template %q warmpool %q, want python and default", tmpl, policy)
		}
		if fast := fastReviews(t) - fastBefore; fast < 1 {
			t.Errorf("no review took the fast path for a v1alpha1 read of a v1beta1 claim")
		}
	})

	// A v1beta1 Sandbox read through v1alpha1: the API server's v1alpha1
	// cache and reads convert it on the webhook's fast path, which copies
	// the shared fields and writes replicas from operatingMode.
	t.Run("v1beta1 Sandbox, v1alpha1 read", func(t *testing.T) {
		// The API server's reviews of these objects must take the fast
		// path: the reviews it sends carry an empty response, which the
		// fast path once refused, sending every review to the typed one.
		fastBefore := fastReviews(t)
		for name, mode := range map[string]agentsv1beta1.SandboxOperatingMode{"running": "", "suspended": agentsv1beta1.SandboxOperatingModeSuspended} {
			sb := &agentsv1beta1.Sandbox{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
				Spec: agentsv1beta1.SandboxSpec{OperatingMode: mode, SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
					PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:" + name}}}},
				}},
			}
			if _, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := alphaSandboxes.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := int64(1)
			if mode == agentsv1beta1.SandboxOperatingModeSuspended {
				want = 0
			}
			replicas, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas")
			_, hasMode, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "operatingMode")
			containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "podTemplate", "spec", "containers")
			if got.GetAPIVersion() != "agents.x-k8s.io/v1alpha1" || replicas != want || hasMode || len(containers) != 1 ||
				containers[0].(map[string]any)["image"] != "img:"+name || got.GetLabels()["app"] != name {
				t.Errorf("v1alpha1 view of %s: %v; want replicas %d, no operatingMode, the pod template and labels", name, got.Object, want)
			}
		}
		// Two reads at least, plus the v1alpha1 watch cache's own.
		if fast := fastReviews(t) - fastBefore; fast < 2 {
			t.Errorf("%v reviews took the fast path during two v1alpha1 reads of v1beta1 Sandboxes, want at least 2", fast)
		}
	})

	t.Run("list and watch in both versions", func(t *testing.T) {
		w, err := alphaSandboxes.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		sb := &agentsv1beta1.Sandbox{
			ObjectMeta: metav1.ObjectMeta{Name: "watched"},
			Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
				PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
			}},
		}
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for seen := false; !seen; {
			select {
			case ev := <-w.ResultChan():
				u, ok := ev.Object.(*unstructured.Unstructured)
				seen = ok && ev.Type == watch.Added && u.GetName() == "watched" && u.GetAPIVersion() == "agents.x-k8s.io/v1alpha1"
			case <-deadline:
				t.Fatal("the v1alpha1 watch never showed the Sandbox created through v1beta1")
			}
		}
		alpha, err := alphaSandboxes.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		beta, err := env.Agents.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(alpha.Items) != len(beta.Items) || len(beta.Items) < 3 {
			t.Errorf("v1alpha1 lists %d, v1beta1 lists %d", len(alpha.Items), len(beta.Items))
		}
	})

	t.Run("v1alpha1 read-modify-write keeps v1beta1-only fields", func(t *testing.T) {
		tmpl := &extv1beta1.SandboxTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "python"},
			Spec: extv1beta1.SandboxTemplateSpec{
				SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
					PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
				},
				VolumeClaimTemplatesPolicy: extv1beta1.VolumeClaimTemplatesPolicyOverrides,
			},
		}
		if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		alphaTemplates := env.Dynamic.Resource(extv1alpha1.SandboxTemplatesResource).Namespace(ns)
		got, err := alphaTemplates.Get(ctx, "python", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.SetLabels(map[string]string{"edited": "through-v1alpha1"})
		if _, err := alphaTemplates.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		after, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(ns).Get(ctx, "python", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.Spec.VolumeClaimTemplatesPolicy != extv1beta1.VolumeClaimTemplatesPolicyOverrides || after.Labels["edited"] != "through-v1alpha1" {
			t.Errorf("after a v1alpha1 update: policy %q labels %v; want Overrides kept and the label added",
				after.Spec.VolumeClaimTemplatesPolicy, after.Labels)
		}
		if _, leaked := after.Annotations[extv1beta1.VolumeClaimTemplatesPolicyAnnotation]; leaked {
			t.Error("the policy annotation leaked into the stored v1beta1 object")
		}
	})
}

// fastReviews reads agent_sandbox_conversion_reviews_total{path="fast"}
// of the webhook this test process serves.
func fastReviews(t *testing.T) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := conversion.Register(reg); err != nil {
		t.Fatal(err)
	}
	return framework.GatheredCounter(t, reg, "agent_sandbox_conversion_reviews_total", "path", conversion.PathFast)
}
