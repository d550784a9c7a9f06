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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestAttackForgedPoolMemberIsNotCounted: a Sandbox a tenant forged as a
// member of the pool (controller reference to its UID, every member label,
// the hash labels of the current template) with its own pod spec was
// counted as a member: the pool's status included it, and the excess it
// made was deleted, the forgery or a real member. It is now neither
// counted nor touched, and the pool says so in a Warning Event.
func TestAttackForgedPoolMemberIsNotCounted(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, allControllers...)
	ctx := framework.Context(t, timeout)
	pool := setup(t, env, 2, "")
	waitPool(t, env, 2)
	genuine := map[string]bool{}
	for _, sb := range members(t, env) {
		genuine[sb.Name] = true
	}
	tmpl, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := controller.HashTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	forged := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Labels: map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash("pool"),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
			agentsv1beta1.SandboxTemplateHashLabel:    hashes.Blueprint,
			agentsv1beta1.SandboxPodTemplateHashLabel: hashes.PodTemplate,
			agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
		}, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	forged.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate:latest"
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Watch the pool for a while after the forgery is Ready.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "forged", metav1.GetOptions{})
		return err == nil && len(sb.Status.PodIPs) > 0, nil
	})
	if err != nil {
		t.Fatal("the forged member never got a pod IP (or was deleted)")
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Replicas != 2 || p.Status.ReadyReplicas > 2 {
			t.Fatalf("the pool counts the forgery: status %+v", p.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	left := map[string]bool{}
	for _, sb := range members(t, env) {
		left[sb.Name] = true
	}
	for name := range genuine {
		if !left[name] {
			t.Errorf("real member %s was deleted", name)
		}
	}
	if !left["forged"] {
		t.Error("the forgery was deleted; it is not the pool's to delete")
	}
	events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Reason == "RefusedMember" && e.Related != nil && e.Related.Name == "forged" {
			return
		}
	}
	t.Error("no RefusedMember Event names the forgery")
}
