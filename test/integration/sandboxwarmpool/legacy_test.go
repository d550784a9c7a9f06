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

package sandboxwarmpool

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// legacyMember is a member as a controller version before the
// warm-pool-member annotation made it: the pool's controller reference,
// labels and the template's spec, no annotation, and (made by an earlier
// process) no provenance here.
func legacyMember(t *testing.T, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, name string) *agentsv1beta1.Sandbox {
	t.Helper()
	hashes, err := sandboxpolicy.HashTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: pool.Namespace, Name: name, Labels: map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash(pool.Name),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
			agentsv1beta1.SandboxTemplateHashLabel:    hashes.Blueprint,
			agentsv1beta1.SandboxPodTemplateHashLabel: hashes.PodTemplate,
			agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
			agentsv1beta1.CreatedByLabel:              agentsv1beta1.CreatedByController,
		}, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	sandboxpolicy.SecureDefaults{}.Apply(tmpl, &sb.Spec.PodTemplate.Spec)
	return sb
}

// TestLegacyMembersReplacedAfterTemplateChange: members made before the
// warm-pool-member annotation existed are counted while they run the
// template; after a template change they used to be refused and linger,
// uncounted and unclaimable, until deleted by hand. The pool controls them
// by UID, so they are its to delete: it replaces them, never controlling
// more than spec.replicas.
func TestLegacyMembersReplacedAfterTemplateChange(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, timeout)
	// The pool and its legacy members exist before this controller runs,
	// as after an upgrade.
	pool := setup(t, env, 2, "")
	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)
	tmpl, err := templates.Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	legacy := []string{"pool-legacy-a", "pool-legacy-b"}
	for _, name := range legacy {
		if _, err := sandboxes.Create(ctx, legacyMember(t, pool, tmpl, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	owned := watchOwnership(t, env, pool.UID)
	framework.StartControllers(t, env, allControllers...)

	// They run the template: counted, nothing created next to them.
	waitPool(t, env, 2)
	if ms := members(t, env); len(ms) != 2 {
		t.Fatalf("%d members before the template change, want the 2 legacy ones", len(ms))
	}

	tmpl.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, name := range legacy {
			if _, err := sandboxes.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the legacy members were not deleted after the template change: %v", err)
	}
	waitPool(t, env, 2)
	for _, sb := range members(t, env) {
		if img := sb.Spec.PodTemplate.Spec.Containers[0].Image; img != "python:3.14" || sb.Annotations[agentsv1beta1.WarmPoolMemberAnnotation] != string(pool.UID) {
			t.Errorf("member %s runs %s with member annotation %q; want replacements from the new template", sb.Name, img,
				sb.Annotations[agentsv1beta1.WarmPoolMemberAnnotation])
		}
	}
	if m := owned.maxOwned(); m > 2 {
		t.Errorf("the pool controlled %d Sandboxes at once, more than its 2 replicas", m)
	}
}
