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

package manifests

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const wakeIdleComponent = "manifests/components/router-wake-idle"

// TestRouterWakeIdleComponent: the component builds over manifests/router,
// and on the real API server its policy lets the router's ServiceAccount
// wake a Sandbox and record activity, and refuses it every other change:
// the pod template above all, which would run code of the router's choice.
func TestRouterWakeIdleComponent(t *testing.T) {
	env := framework.Setup(t)
	ctx := context.Background()
	ensureNamespace(t, env, "agent-sandbox-system")

	kinds := map[string]bool{}
	rendered := renderWithComponent(t, env, "manifests/router", wakeIdleComponent)
	for _, o := range decode(t, rendered) {
		kinds[o.GetKind()+"/"+o.GetName()] = true
		if o.GetKind() == "Deployment" {
			// With the right to write granted, the router must also count
			// requests, or opted-in Sandboxes are suspended while in use.
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			var args []any
			if len(containers) > 0 {
				args, _, _ = unstructured.NestedSlice(containers[0].(map[string]any), "args")
			}
			if !slices.Contains(args, any("--activity-tracking=true")) {
				t.Errorf("the component leaves the router's --activity-tracking off: args %v", args)
			}
		}
	}
	for _, want := range []string{"Deployment/sandbox-router", "ClusterRole/sandbox-router-wake-idle", "ClusterRoleBinding/sandbox-router-wake-idle",
		"ValidatingAdmissionPolicy/sandbox-router-wake-idle", "ValidatingAdmissionPolicyBinding/sandbox-router-wake-idle"} {
		if !kinds[want] {
			t.Errorf("the component over manifests/router renders no %s", want)
		}
	}

	// The component's own objects, for real: the policy is cluster-wide.
	files := []string{"-f", filepath.Join(wakeIdleComponent, "rbac.yaml"), "-f", filepath.Join(wakeIdleComponent, "policy.yaml")}
	run(t, env, nil, append([]string{"apply"}, files...)...)
	t.Cleanup(func() { run(t, env, nil, append([]string{"delete", "--ignore-not-found"}, files...)...) })

	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = framework.ServiceAccountToken(t, env, "agent-sandbox-system", "sandbox-router")
	routerClient, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	asRouter := routerClient.AgentsV1beta1().Sandboxes(env.Namespace)
	sb, err := sandboxes.Create(ctx, &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "sleepy", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{
			agentsv1beta1.WakeOnRequestAnnotation:   agentsv1beta1.WakeOnRequestEnabled,
			agentsv1beta1.IdleSuspendedAtAnnotation: "2026-01-02T03:04:05Z",
		}},
		Spec: agentsv1beta1.SandboxSpec{
			SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "agent", Image: "agent:test"}},
			}}},
			OperatingMode: agentsv1beta1.SandboxOperatingModeSuspended,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(c interface {
		Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*agentsv1beta1.Sandbox, error)
	}, body string) error {
		_, err := c.Patch(ctx, sb.Name, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		return err
	}
	const podTemplate = `{"spec":{"podTemplate":{"spec":{"containers":[{"name":"agent","image":"attacker:latest"}]}}}}`
	// The policy takes effect once the API server's admission has loaded
	// it; RBAC alone would let this through. The probe is a dry run:
	// admission judges it all the same, but one let through before the
	// policy was loaded must not land, or the same patch would then be a
	// no-op, which the policy (rightly) allows.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		_, last = asRouter.Patch(ctx, sb.Name, types.MergePatchType, []byte(podTemplate), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), "sandbox-router-wake-idle"), nil
	})
	if err != nil {
		t.Fatalf("the router's ServiceAccount changing the pod template (dry run): %v, want refused by the policy", last)
	}
	if err := patch(asRouter, podTemplate); err == nil || !strings.Contains(err.Error(), "sandbox-router-wake-idle") {
		t.Fatalf("the router's ServiceAccount changing the pod template: %v, want refused by the policy", err)
	}

	// What the router does: the wake's JSON patch, then an activity write.
	wake := `[{"op":"test","path":"/metadata/uid","value":"` + string(sb.UID) + `"},` +
		`{"op":"test","path":"/spec/operatingMode","value":"Suspended"},` +
		`{"op":"replace","path":"/spec/operatingMode","value":"Running"},` +
		`{"op":"add","path":"/metadata/annotations/agents.x-k8s.io~1last-activity","value":"2026-01-02T04:00:00Z"},` +
		`{"op":"remove","path":"/metadata/annotations/agents.x-k8s.io~1idle-suspended-at"}]`
	if _, err := asRouter.Patch(ctx, sb.Name, types.JSONPatchType, []byte(wake), metav1.PatchOptions{}); err != nil {
		t.Errorf("the router's wake patch: %v", err)
	}
	if err := patch(asRouter, `{"metadata":{"annotations":{"agents.x-k8s.io/last-activity":"2026-01-02T04:15:00Z"}}}`); err != nil {
		t.Errorf("the router's activity write: %v", err)
	}

	// Now Running: everything else is refused, by the policy unless the
	// API server already refuses it to anyone in the router's place.
	const byPolicy = "sandbox-router-wake-idle"
	refused := map[string]struct{ body, by string }{
		"suspend":            {`{"spec":{"operatingMode":"Suspended"}}`, byPolicy},
		"service":            {`{"spec":{"service":true}}`, byPolicy},
		"shutdown time":      {`{"spec":{"shutdownTime":"2030-01-01T00:00:00Z"}}`, byPolicy},
		"the wake opt-in":    {`{"metadata":{"annotations":{"agents.x-k8s.io/wake-on-request":null}}}`, byPolicy},
		"the idle timeout":   {`{"metadata":{"annotations":{"agents.x-k8s.io/idle-timeout":"7d"}}}`, byPolicy},
		"another annotation": {`{"metadata":{"annotations":{"example.com/x":"y"}}}`, byPolicy},
		"labels":             {`{"metadata":{"labels":{"team":"b"}}}`, byPolicy},
		"finalizers":         {`{"metadata":{"finalizers":["example.com/hold"]}}`, byPolicy},
		// Immutable in the CRD for everyone.
		"volume claim templates": {`{"spec":{"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}`, "immutable"},
		// OwnerReferencesPermissionEnforcement: the router cannot delete.
		"owner references": {`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"x","uid":"00000000-0000-0000-0000-000000000001"}]}}`, "forbidden"},
	}
	for what, tc := range refused {
		if err := patch(asRouter, tc.body); err == nil || !strings.Contains(err.Error(), tc.by) {
			t.Errorf("the router changing %s: %v, want refused (%s)", what, err, tc.by)
		}
	}
	got, err := sandboxes.Get(ctx, sb.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning || got.Spec.PodTemplate.Spec.Containers[0].Image != "agent:test" {
		t.Errorf("after the router's writes: mode %q, image %q", got.Spec.OperatingMode, got.Spec.PodTemplate.Spec.Containers[0].Image)
	}

	// The policy is the router's alone: the owner may still change the
	// pod template.
	if err := patch(sandboxes, podTemplate); err != nil {
		t.Errorf("the owner changing the pod template: %v", err)
	}
}
