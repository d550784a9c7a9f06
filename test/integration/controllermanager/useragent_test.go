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

// Package controllermanager tests the wiring the binary and the other
// integration tests share, against a real API server that keeps an audit
// log: each controller talks to the API server under a user agent of its
// own.
package controllermanager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/controllermanager"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// One node, so warm Sandboxes become Ready and a claim takes one over.
func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1), framework.WithAuditLog()) }

// write is a write the API server logged: "verb resource[/subresource]".
type write string

// ownWrites are the resources each controller may write; a write of
// anything else under its user agent is another controller's write sent
// through the wrong client.
var ownWrites = map[string][]string{
	sandbox.Name:         {"pods", "services", "persistentvolumeclaims", "sandboxes", "sandboxes/status", "events"},
	sandboxtemplate.Name: {"networkpolicies", "sandboxtemplates", "sandboxtemplates/status", "events"},
	sandboxwarmpool.Name: {"sandboxes", "sandboxwarmpools", "sandboxwarmpools/status", "events"},
	sandboxclaim.Name:    {"sandboxes", "sandboxclaims", "sandboxclaims/status", "events"},
}

// mustWrite is one write each controller makes when a claim is served
// from a warm pool.
var mustWrite = map[string]func(write) bool{
	sandbox.Name:         func(w write) bool { return w == "create pods" },
	sandboxtemplate.Name: func(w write) bool { return w == "create networkpolicies" },
	sandboxwarmpool.Name: func(w write) bool { return w == "create sandboxes" },
	sandboxclaim.Name: func(w write) bool {
		return w == "patch sandboxclaims/status" || w == "update sandboxclaims/status"
	},
}

// TestEachControllerHasItsOwnUserAgent runs every registered controller as
// the binary wires them and serves a claim from a warm pool. The API
// server's audit log must show each controller's writes under its own
// user agent (never another's), the informers' lists and watches under
// the shared-informers one, and every controller syncing.
func TestEachControllerHasItsOwnUserAgent(t *testing.T) {
	env := framework.Setup(t)
	names := controllermanager.Enabled(true)
	if len(names) != len(controllermanager.Controllers()) {
		t.Fatalf("Enabled(true) = %v, not every registered controller", names)
	}
	ctrls := framework.StartControllers(t, env, names...)
	serveClaimFromWarmPool(t, env)

	// Every user agent the wiring may send, by component.
	components := map[string]string{controllermanager.UserAgent(controllermanager.SharedInformersUserAgent): "informers"}
	for _, d := range controllermanager.Controllers() {
		components[controllermanager.UserAgent(d.UserAgent)] = d.Name
	}
	var byComponent map[string][]write
	var report []string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		byComponent, report = map[string][]write{}, nil
		for _, e := range framework.AuditEvents(t) {
			if e.ObjectRef.Namespace != env.Namespace || !strings.HasPrefix(e.UserAgent, controllermanager.BinaryName+"/") {
				continue
			}
			c, ok := components[e.UserAgent]
			if !ok {
				report = append(report, fmt.Sprintf("%s %s from unknown user agent %q", e.Verb, e.ObjectRef.Resource, e.UserAgent))
				continue
			}
			resource := e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				resource += "/" + e.ObjectRef.Subresource
			}
			byComponent[c] = append(byComponent[c], write(e.Verb+" "+resource))
		}
		for _, name := range names {
			if !slices.ContainsFunc(byComponent[name], mustWrite[name]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the audit log never showed each controller's write under its user agent; requests by component: %v", byComponent)
	}
	for _, r := range report {
		t.Error(r)
	}
	for _, name := range names {
		for _, w := range byComponent[name] {
			verb, resource, _ := strings.Cut(string(w), " ")
			if isWrite(verb) && !slices.Contains(ownWrites[name], resource) {
				t.Errorf("%q sent under the %s controller's user agent, which does not write %s", w, name, resource)
			}
		}
		if s := ctrls.Syncs(t, name); s.Total == 0 {
			t.Errorf("the %s controller never synced", name)
		}
	}
	informers := byComponent["informers"]
	if len(informers) == 0 {
		t.Error("no list or watch under the shared-informers user agent")
	}
	for _, w := range informers {
		if verb, _, _ := strings.Cut(string(w), " "); verb != "list" && verb != "watch" {
			t.Errorf("%q sent under the shared-informers user agent, which only lists and watches", w)
		}
	}
}

func isWrite(verb string) bool {
	return verb == "create" || verb == "update" || verb == "patch" || verb == "delete" || verb == "deletecollection"
}

// serveClaimFromWarmPool makes a template, a pool of one and a claim, and
// waits until the claim is Ready on a Sandbox taken from the pool.
func serveClaimFromWarmPool(t *testing.T, env *framework.Env) {
	t.Helper()
	ctx := framework.Context(t, 2*time.Minute)
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "python"},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}},
			},
		}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: "pool"},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To[int32](1), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		return err == nil && p.Status.ReadyReplicas == 1, nil
	})
	if err != nil {
		t.Fatal("the pool never had a Ready member")
	}
	claim := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim"},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "pool"}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *extv1beta1.SandboxClaim
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, "claim", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = c
		return meta.IsStatusConditionTrue(c.Status.Conditions, "Ready"), nil
	})
	if err != nil {
		t.Fatalf("the claim never became Ready: %+v", last)
	}
}
