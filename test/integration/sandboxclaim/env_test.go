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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestEnvForcesAColdStartUnderTheTemplatePolicy: env can only be set on a
// Pod at creation, so such a claim never takes a warm member; the template
// decides whether env is allowed at all.
func TestEnvForcesAColdStartUnderTheTemplatePolicy(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, time.Minute)
	setupPool(t, env, 2)
	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)

	withEnv := func(name string) *extv1beta1.SandboxClaim {
		c := newClaim(name)
		c.Spec.Env = []extv1beta1.EnvVar{{Name: "TASK_ID", Value: "42"}}
		return c
	}
	if _, err := claimsClient.Create(ctx, withEnv("refused"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "refused", "EnvVarsInjectionRejected", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Reason == extv1beta1.ClaimReasonEnvVarsRejected
	})

	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)
	tmpl, err := templates.Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
	if _, err := templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the controller's cache see the policy
	if _, err := claimsClient.Create(ctx, withEnv("configured"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readyClaim(t, env, "configured")
	if got.Status.SandboxStatus.Name != "configured" {
		t.Errorf("a claim with env bound to %q; it must get a cold Sandbox of its own", got.Status.SandboxStatus.Name)
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "configured", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Labels[agentsv1beta1.LaunchTypeLabel] != agentsv1beta1.LaunchTypeCold {
		t.Errorf("launch-type %q, want cold", sb.Labels[agentsv1beta1.LaunchTypeLabel])
	}
	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "configured", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range pod.Spec.Containers[0].Env {
		found = found || e == (corev1.EnvVar{Name: "TASK_ID", Value: "42"})
	}
	if !found {
		t.Errorf("pod env %v lacks TASK_ID=42", pod.Spec.Containers[0].Env)
	}
}

// TestLaterMetadataEditsReachThePodInPlace: additionalPodMetadata edited
// after binding relabels the running Pod without replacing it.
func TestLaterMetadataEditsReachThePodInPlace(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, time.Minute)
	setupPool(t, env, 1)
	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)
	if _, err := claimsClient.Create(ctx, newClaim("relabel"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound := readyClaim(t, env, "relabel").Status.SandboxStatus.Name
	before, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, bound, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, still := before.Labels[agentsv1beta1.WarmPoolSandboxLabel]; still {
		// The Sandbox controller may not have caught up yet; the wait
		// below covers the label we add, this one only informs.
		t.Logf("pod still carries the pool label right after adoption")
	}

	claim, err := claimsClient.Get(ctx, "relabel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.Spec.AdditionalPodMetadata.Labels = map[string]string{"sandbox.users.io/phase": "two"}
	if _, err := claimsClient.Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var after *corev1.Pod
	err = waitFor(func() bool {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, bound, metav1.GetOptions{})
		after = p
		_, pooled := p.Labels[agentsv1beta1.WarmPoolSandboxLabel]
		return err == nil && p.Labels["sandbox.users.io/phase"] == "two" && !pooled
	})
	if err != nil {
		t.Fatalf("the pod never got the claim's new label (and lost the pool's): %v", after.Labels)
	}
	if after.UID != before.UID {
		t.Error("the Pod was replaced; metadata edits must apply in place")
	}
}

func waitFor(cond func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return context.DeadlineExceeded
}
