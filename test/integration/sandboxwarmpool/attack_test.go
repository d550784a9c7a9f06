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

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestAttackForgedPoolMemberIsNotCounted: a Sandbox a tenant forged as a
// member of the pool (controller reference to its UID, every member label,
// the hash labels of the current template) with its own pod spec was
// counted as a member: the pool's status included it, and the excess it
// made was deleted, the forgery or a real member. It is now never counted
// and no real member is touched; being controlled by the pool's UID and
// not running its template, it is stale, and the pool deletes it (it asked
// for that by naming the pool as its controller).
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
	// Everything a member carries, with the tenant's own image.
	forged := legacyMember(t, pool, tmpl, "forged")
	forged.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate:latest"
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Until the pool has deleted it, the pool never counts it.
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Replicas > 2 || p.Status.ReadyReplicas > 2 {
			t.Fatalf("the pool counts the forgery: status %+v", p.Status)
		}
		_, err = sandboxes.Get(ctx, "forged", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("the forgery was not deleted: %v", err)
	}
	waitPool(t, env, 2)
	left := map[string]bool{}
	for _, sb := range members(t, env) {
		left[sb.Name] = true
	}
	for name := range genuine {
		if !left[name] {
			t.Errorf("real member %s was deleted", name)
		}
	}
	// Events are sent asynchronously.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == "SuccessfulDelete" && e.Related != nil && e.Related.Name == "forged" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no SuccessfulDelete Event names the forgery: %v", err)
	}
}
