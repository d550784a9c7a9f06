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

package sandboxclaim

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func readyClaim(t *testing.T, env *framework.Env, name string) *extv1beta1.SandboxClaim {
	t.Helper()
	return waitClaim(t, env, name, "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionTrue
	})
}

func waitDeleted(t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(get(ctx)), nil
	})
	if err != nil {
		t.Fatalf("%s was never deleted", what)
	}
}

func TestClaimShutdownPolicies(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, 2*time.Minute)
	setupPool(t, env, 3)
	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)

	for _, policy := range []extv1beta1.ShutdownPolicy{extv1beta1.ShutdownPolicyRetain, extv1beta1.ShutdownPolicyDelete, extv1beta1.ShutdownPolicyDeleteForeground} {
		t.Run(string(policy), func(t *testing.T) {
			name := "expiring-" + map[extv1beta1.ShutdownPolicy]string{"Retain": "retain", "Delete": "delete", "DeleteForeground": "foreground"}[policy]
			claim := newClaim(name)
			claim.Spec.Lifecycle = &extv1beta1.Lifecycle{
				ShutdownTime:   &metav1.Time{Time: time.Now().Add(4 * time.Second)},
				ShutdownPolicy: policy,
			}
			if _, err := claimsClient.Create(ctx, claim, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			bound := readyClaim(t, env, name).Status.SandboxStatus.Name
			getSandbox := func(ctx context.Context) error { _, err := sandboxes.Get(ctx, bound, metav1.GetOptions{}); return err }
			getClaim := func(ctx context.Context) error {
				_, err := claimsClient.Get(ctx, name, metav1.GetOptions{})
				return err
			}

			if policy == extv1beta1.ShutdownPolicyRetain {
				got := waitClaim(t, env, name, "expired", func(c *extv1beta1.SandboxClaim) bool {
					r := readyOf(c)
					return r != nil && r.Reason == extv1beta1.ClaimExpiredReason && c.Status.SandboxStatus.Name == ""
				})
				if r := readyOf(got); r.Status != metav1.ConditionFalse {
					t.Errorf("expired claim Ready = %s", r.Status)
				}
				waitDeleted(t, "the retained claim's sandbox", getSandbox)
				if err := getClaim(ctx); err != nil {
					t.Errorf("Retain deleted the claim: %v", err)
				}
				return
			}
			waitDeleted(t, "the expired claim", getClaim)
			waitDeleted(t, "the expired claim's sandbox", getSandbox)
		})
	}
}

func TestTTLAfterFinished(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, time.Minute)
	setupPool(t, env, 1)

	claim := newClaim("job")
	claim.Spec.Lifecycle = &extv1beta1.Lifecycle{TTLSecondsAfterFinished: ptr.To[int32](2), ShutdownPolicy: extv1beta1.ShutdownPolicyDelete}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound := readyClaim(t, env, "job").Status.SandboxStatus.Name

	// Nothing expires while the Pod runs.
	time.Sleep(3 * time.Second)
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, "job", metav1.GetOptions{}); err != nil {
		t.Fatalf("claim expired before its Pod finished: %v", err)
	}

	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, bound, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodSucceeded
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "job", "Finished", func(c *extv1beta1.SandboxClaim) bool {
		return meta.IsStatusConditionTrue(c.Status.Conditions, "Finished")
	})
	waitDeleted(t, "the finished claim", func(ctx context.Context) error {
		_, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, "job", metav1.GetOptions{})
		return err
	})
}

func TestClaimDeletionRemovesItsSandbox(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, time.Minute)
	setupPool(t, env, 1)
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim("short"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound := readyClaim(t, env, "short").Status.SandboxStatus.Name
	if err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Delete(ctx, "short", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, "the deleted claim's sandbox", func(ctx context.Context) error {
		_, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, bound, metav1.GetOptions{})
		return err
	})
}
