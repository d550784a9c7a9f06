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

package api

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func toUnstructured(t *testing.T, obj runtime.Object, gvk schema.GroupVersionKind) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u
}

func set(t *testing.T, u *unstructured.Unstructured, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(u.Object, value, path...); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaRejectsBadInput sends invalid objects through the dynamic
// client, so that wrong types and unknown enum values reach the server
// exactly as a careless kubectl apply would send them. Each must be
// refused as Invalid with a message that names the offending field.
func TestSchemaRejectsBadInput(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace

	sandboxGVK := agentsv1beta1.SandboxGroupVersionKind
	templateGVK := extv1beta1.SandboxTemplateGroupVersionKind
	poolGVK := extv1beta1.SandboxWarmPoolGroupVersionKind
	claimGVK := extv1beta1.SandboxClaimGroupVersionKind
	resources := map[schema.GroupVersionKind]schema.GroupVersionResource{
		sandboxGVK:  agentsv1beta1.SandboxesResource,
		templateGVK: extv1beta1.SandboxTemplatesResource,
		poolGVK:     extv1beta1.SandboxWarmPoolsResource,
		claimGVK:    extv1beta1.SandboxClaimsResource,
	}
	sandbox := func(name string) *unstructured.Unstructured {
		return toUnstructured(t, newSandbox(ns, name), sandboxGVK)
	}
	template := func(name string) *unstructured.Unstructured {
		return toUnstructured(t, newTemplate(ns, name), templateGVK)
	}
	pool := func(name string) *unstructured.Unstructured {
		return toUnstructured(t, newPool(ns, name, "tmpl"), poolGVK)
	}
	claim := func(name string) *unstructured.Unstructured {
		return toUnstructured(t, newClaim(ns, name, "pool"), claimGVK)
	}

	tests := map[string]struct {
		obj *unstructured.Unstructured
		// path is set to value, or removed when value is nil.
		path  []string
		value any
		// wantField and wantDetail must both appear in the error message.
		wantField, wantDetail string
	}{
		"sandbox operatingMode outside the enum": {
			obj: sandbox("bad-mode"), path: []string{"spec", "operatingMode"},
			value:     "Paused",
			wantField: "spec.operatingMode", wantDetail: "Unsupported value",
		},
		"sandbox shutdownPolicy outside the enum": {
			obj: sandbox("bad-policy"), path: []string{"spec", "shutdownPolicy"},
			value:     "DeleteForeground",
			wantField: "spec.shutdownPolicy", wantDetail: "Unsupported value",
		},
		"sandbox shutdownTime not RFC 3339": {
			obj: sandbox("bad-time"), path: []string{"spec", "shutdownTime"},
			value:     "tomorrow",
			wantField: "spec.shutdownTime", wantDetail: "date-time",
		},
		"sandbox without podTemplate": {
			obj: sandbox("no-template"), path: []string{"spec", "podTemplate"}, // removed
			wantField: "spec.podTemplate", wantDetail: "Required value",
		},
		"pod template without containers": {
			obj: sandbox("no-containers"), path: []string{"spec", "podTemplate", "spec", "containers"}, // removed
			wantField: "spec.podTemplate.spec.containers", wantDetail: "Required value",
		},
		"container without a name": {
			obj: sandbox("unnamed-container"), path: []string{"spec", "podTemplate", "spec", "containers"},
			value:     []any{map[string]any{"image": "python:3.13"}},
			wantField: "spec.podTemplate.spec.containers[0].name", wantDetail: "Required value",
		},
		"malformed resource quantity": {
			obj: sandbox("bad-quantity"), path: []string{"spec", "podTemplate", "spec", "containers"},
			value: []any{map[string]any{"name": "agent", "image": "python:3.13",
				"resources": map[string]any{"limits": map[string]any{"cpu": "lots"}}}},
			wantField: "spec.podTemplate.spec.containers[0].resources.limits.cpu", wantDetail: "",
		},
		"sandbox name longer than 253 characters": {
			obj:       sandbox(strings.Repeat("a", 254)),
			wantField: "metadata.name", wantDetail: "253",
		},
		"sandbox name not a DNS subdomain": {
			obj:       sandbox("Not_A_Name"),
			wantField: "metadata.name", wantDetail: "RFC 1123",
		},
		"template networkPolicyManagement outside the enum": {
			obj: template("bad-npm"), path: []string{"spec", "networkPolicyManagement"},
			value:     "Sometimes",
			wantField: "spec.networkPolicyManagement", wantDetail: "Unsupported value",
		},
		"template envVarsInjectionPolicy outside the enum": {
			obj: template("bad-env-policy"), path: []string{"spec", "envVarsInjectionPolicy"},
			value:     "Always",
			wantField: "spec.envVarsInjectionPolicy", wantDetail: "Unsupported value",
		},
		"template volumeClaimTemplatesPolicy outside the enum": {
			obj: template("bad-vct-policy"), path: []string{"spec", "volumeClaimTemplatesPolicy"},
			value:     "Sometimes",
			wantField: "spec.volumeClaimTemplatesPolicy", wantDetail: "Unsupported value",
		},
		"pool with negative replicas": {
			obj: pool("negative"), path: []string{"spec", "replicas"},
			value:     int64(-1),
			wantField: "spec.replicas", wantDetail: "greater than or equal to 0",
		},
		"pool without sandboxTemplateRef": {
			obj: pool("no-ref"), path: []string{"spec", "sandboxTemplateRef"}, // removed
			wantField: "spec.sandboxTemplateRef", wantDetail: "Required value",
		},
		"pool updateStrategy.type outside the enum": {
			obj: pool("bad-strategy"), path: []string{"spec", "updateStrategy"},
			value:     map[string]any{"type": "RollingUpdate"},
			wantField: "spec.updateStrategy.type", wantDetail: "Unsupported value",
		},
		"claim without warmPoolRef": {
			obj: claim("no-pool"), path: []string{"spec", "warmPoolRef"}, // removed
			wantField: "spec.warmPoolRef", wantDetail: "Required value",
		},
		"claim lifecycle.shutdownPolicy outside the enum": {
			obj: claim("bad-policy"), path: []string{"spec", "lifecycle"},
			value:     map[string]any{"shutdownPolicy": "Orphan"},
			wantField: "spec.lifecycle.shutdownPolicy", wantDetail: "Unsupported value",
		},
		"claim negative ttlSecondsAfterFinished": {
			obj: claim("bad-ttl"), path: []string{"spec", "lifecycle"},
			value:     map[string]any{"ttlSecondsAfterFinished": int64(-5)},
			wantField: "spec.lifecycle.ttlSecondsAfterFinished", wantDetail: "greater than or equal to 0",
		},
		"claim env entry without a value": {
			obj: claim("env-no-value"), path: []string{"spec", "env"},
			value:     []any{map[string]any{"name": "TOKEN"}},
			wantField: "spec.env[0].value", wantDetail: "Required value",
		},
		"claim volumeClaimTemplate without spec": {
			obj: claim("vct-no-spec"), path: []string{"spec", "volumeClaimTemplates"},
			value:     []any{map[string]any{"metadata": map[string]any{"name": "data"}}},
			wantField: "spec.volumeClaimTemplates[0].spec", wantDetail: "Required value",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			switch {
			case tc.path == nil:
			case tc.value == nil:
				unstructured.RemoveNestedField(tc.obj.Object, tc.path...)
			default:
				set(t, tc.obj, tc.value, tc.path...)
			}
			gvr := resources[tc.obj.GroupVersionKind()]
			_, err := env.Dynamic.Resource(gvr).Namespace(ns).Create(ctx, tc.obj, metav1.CreateOptions{})
			assertInvalid(t, err, tc.wantField, tc.wantDetail)
		})
	}
}

func assertInvalid(t *testing.T, err error, wantField, wantDetail string) {
	t.Helper()
	if err == nil {
		t.Fatalf("request accepted; want Invalid naming %s", wantField)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("error %v (reason %s), want Invalid", err, apierrors.ReasonForError(err))
	}
	if !strings.Contains(err.Error(), wantField) || !strings.Contains(err.Error(), wantDetail) {
		t.Errorf("error %q does not name %q with %q", err.Error(), wantField, wantDetail)
	}
}

// TestVolumeClaimTemplatesAreImmutable proves the CEL transition rule on
// v1beta1 Sandbox: the list can be neither changed, added nor removed.
func TestVolumeClaimTemplatesAreImmutable(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)

	with, err := sandboxes.Create(ctx, newSandboxWithVolume(env.Namespace, "with-volume"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	without, err := sandboxes.Create(ctx, newSandbox(env.Namespace, "without-volume"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	changed := with.DeepCopy()
	changed.Spec.VolumeClaimTemplates[0].Name = "scratch"
	_, err = sandboxes.Update(ctx, changed, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	removed := with.DeepCopy()
	removed.Spec.VolumeClaimTemplates = nil
	_, err = sandboxes.Update(ctx, removed, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	added := without.DeepCopy()
	added.Spec.VolumeClaimTemplates = newSandboxWithVolume(env.Namespace, "x").Spec.VolumeClaimTemplates
	_, err = sandboxes.Update(ctx, added, metav1.UpdateOptions{})
	assertInvalid(t, err, "spec", "volumeClaimTemplates is immutable")

	// Everything else in the spec stays mutable.
	suspended := with.DeepCopy()
	suspended.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	suspended.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := sandboxes.Update(ctx, suspended, metav1.UpdateOptions{}); err != nil {
		t.Errorf("updating operatingMode and image: %v", err)
	}
}
