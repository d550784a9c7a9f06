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

package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
)

// The secure default NetworkPolicy of every managed SandboxTemplate admits
// ingress only from Pods labelled app=sandbox-router in the router's
// namespace. A router Pod without that label cannot reach any sandbox.
func TestManifestPodsMatchSandboxNetworkPolicy(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/router/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Labels["app"]; got != sandboxtemplate.RouterAppLabel {
		t.Errorf("router Pod label app = %q, want %q (the sandboxes' default NetworkPolicy admits only those Pods)", got, sandboxtemplate.RouterAppLabel)
	}

	raw, err = os.ReadFile("../../manifests/router/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Namespace string `json:"namespace"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	if k.Namespace != sandboxtemplate.RouterNamespace {
		t.Errorf("router namespace = %q, want %q", k.Namespace, sandboxtemplate.RouterNamespace)
	}
}

// TestAttackRouterManifestFullAPITokens: the shipped router must not ask
// callers for their full API tokens. It authenticates, it requires a token,
// and it accepts only tokens bound to the router's own audience, which the
// API server refuses: a token seen by the router (or on the wire) opens
// nothing else.
func TestAttackRouterManifestFullAPITokens(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/router/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	flagValue := func(name string) (string, bool) {
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	mode, _ := flagValue("authz-mode")
	if !slices.Contains([]string{router.AuthzModeSubjectAccessReview, router.AuthzModeTokenReview}, mode) {
		t.Fatalf("--authz-mode = %q, want a Kubernetes-token mode", mode)
	}
	if aud, _ := flagValue("authz-tokenreview-audiences"); aud != router.ShippedAudience {
		t.Errorf("--authz-tokenreview-audiences = %q, want %q: without it the router accepts (and sees) full API tokens", aud, router.ShippedAudience)
	}
	if v, ok := flagValue("authz-tokenreview-require-token"); ok && v != "true" {
		t.Errorf("--authz-tokenreview-require-token = %s", v)
	}
}

// The router's cache watches Pods and Sandboxes (a Pod is routed to only
// when its Sandbox's status vouches for it); without both rules the cache
// never syncs and the router never turns ready.
func TestManifestRBACCoversTheCache(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/router/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	for doc := range strings.SplitSeq(string(raw), "\n---\n") {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "ClusterRole" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("no ClusterRole in manifests/router/rbac.yaml")
	}
	for _, want := range []struct{ group, resource string }{{"", "pods"}, {"agents.x-k8s.io", "sandboxes"}} {
		ok := slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, want.group) && slices.Contains(r.Resources, want.resource) &&
				slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch")
		})
		if !ok {
			t.Errorf("the router's ClusterRole lacks list/watch on %q %s", want.group, want.resource)
		}
	}
}
