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

package helm

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// wakeIdleKinds are the objects router.wakeIdle.enabled adds, all named
// sandbox-router-wake-idle.
var wakeIdleKinds = []string{"ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

// TestRouterWakeIdleOffByDefault: an enabled router stays read-only on
// Sandboxes unless wakeIdle is asked for, and passes no wake flag.
func TestRouterWakeIdleOffByDefault(t *testing.T) {
	h := New(t)
	objs := template(t, h, "router.enabled=true")
	for _, kind := range wakeIdleKinds {
		if Find(objs, kind, "sandbox-router-wake-idle") != nil {
			t.Errorf("%s sandbox-router-wake-idle rendered without router.wakeIdle.enabled", kind)
		}
	}
	for _, a := range ContainerArgs(objs, "sandbox-router") {
		if strings.HasPrefix(a, "--activity-tracking") || strings.HasPrefix(a, "--wake-") {
			t.Errorf("router arg %s without a value set", a)
		}
	}
	// wakeIdle without the router renders nothing of it.
	objs = template(t, h, "router.wakeIdle.enabled=true")
	for _, kind := range wakeIdleKinds {
		if Find(objs, kind, "sandbox-router-wake-idle") != nil {
			t.Errorf("%s sandbox-router-wake-idle rendered without the router", kind)
		}
	}
}

// TestRouterWakeIdleFollowsTheRelease: in another namespace and with
// another router ServiceAccount, the right to patch and the admission
// policy's match both name that ServiceAccount (the component's CEL string
// names agent-sandbox-system/sandbox-router), so the policy still narrows
// the router's writes instead of matching nobody.
func TestRouterWakeIdleFollowsTheRelease(t *testing.T) {
	h := New(t)
	out := h.MustRun(t, "template", "agent-sandbox", ChartDir(), "--namespace", "sandboxes-test",
		"--set", "router.enabled=true", "--set", "router.wakeIdle.enabled=true",
		"--set", "router.serviceAccount.name=edge-router",
		"--set", "router.wakeAuthz=proxy", "--set", "router.wakeTimeout=2m",
		"--set", "controller.idleSuspendGrace=45s")
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range wakeIdleKinds {
		if Find(objs, kind, "sandbox-router-wake-idle") == nil {
			t.Fatalf("no %s sandbox-router-wake-idle", kind)
		}
	}
	binding := Find(objs, "ClusterRoleBinding", "sandbox-router-wake-idle")
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	wantSubjects := []any{map[string]any{"kind": "ServiceAccount", "name": "edge-router", "namespace": "sandboxes-test"}}
	if d := cmp.Diff(wantSubjects, subjects); d != "" {
		t.Errorf("ClusterRoleBinding subjects (-want +got):\n%s", d)
	}
	policy := Find(objs, "ValidatingAdmissionPolicy", "sandbox-router-wake-idle")
	conditions, _, _ := unstructured.NestedSlice(policy.Object, "spec", "matchConditions")
	wantConditions := []any{map[string]any{"name": "sandbox-router",
		"expression": `request.userInfo.username == "system:serviceaccount:sandboxes-test:edge-router"`}}
	if d := cmp.Diff(wantConditions, conditions); d != "" {
		t.Errorf("policy matchConditions (-want +got):\n%s", d)
	}
	// The validations are the component's: a few must be there.
	validations, _, _ := unstructured.NestedSlice(policy.Object, "spec", "validations")
	if len(validations) < 4 {
		t.Errorf("the policy has %d validations, want the component's 4: %v", len(validations), validations)
	}

	args := ContainerArgs(objs, "sandbox-router")
	if n := len(args); n < 3 || !slices.Equal(args[n-3:], []string{"--wake-authz=proxy", "--wake-timeout=2m", "--activity-tracking=true"}) {
		t.Errorf("router args %v do not end with the wake flags and --activity-tracking=true", args)
	}
	if c := ContainerArgs(objs, "agent-sandbox-controller"); !slices.Contains(c, "--idle-suspend-grace=45s") {
		t.Errorf("controller args %v lack --idle-suspend-grace=45s", c)
	}
}
