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
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// TestV1alpha1RoundTrip: a Sandbox written as v1alpha1 goes through the
// conversion webhook, is stored and served as v1beta1, runs, and reads back
// as the v1alpha1 object that was written.
func TestV1alpha1RoundTrip(t *testing.T) {
	ns := newNamespace(t)
	alpha := dyn.Resource(agentsv1alpha1.SandboxesResource).Namespace(ns)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "agents.x-k8s.io/v1alpha1", "kind": "Sandbox",
		"metadata": map[string]any{"name": "legacy", "labels": map[string]any{"written-as": "v1alpha1"}},
		"spec": map[string]any{
			"replicas": int64(1),
			"podTemplate": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "sandbox", "image": sandboxImage}},
			}},
		},
	}}
	if _, err := alpha.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sb := waitSandboxReady(t, ns, "legacy")
	if sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning || sb.Labels["written-as"] != "v1alpha1" {
		t.Errorf("v1beta1 view: operatingMode %q labels %v; want Running and the label", sb.Spec.OperatingMode, sb.Labels)
	}
	back, err := alpha.Get(context.Background(), "legacy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.GetAPIVersion() != "agents.x-k8s.io/v1alpha1" {
		t.Errorf("read back as %s", back.GetAPIVersion())
	}
	if r, _, _ := unstructured.NestedInt64(back.Object, "spec", "replicas"); r != 1 {
		t.Errorf("v1alpha1 replicas %d, want 1", r)
	}
	if _, found, _ := unstructured.NestedString(back.Object, "metadata", "annotations", agentsv1beta1.SandboxStateAnnotation); found {
		t.Error("the v1alpha1 view shows the internal state annotation")
	}
}
