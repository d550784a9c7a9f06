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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestServerSideDefaults checks the defaults the API server materializes
// from the CRD schema, which every controller and client relies on.
func TestServerSideDefaults(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	c, ns := env.Agents, env.Namespace

	t.Run("Sandbox", func(t *testing.T) {
		sb, err := c.AgentsV1beta1().Sandboxes(ns).Create(ctx, newSandbox(ns, "defaults"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning {
			t.Errorf("operatingMode = %q, want Running", sb.Spec.OperatingMode)
		}
		if diff := cmp.Diff(ptr.To(agentsv1beta1.ShutdownPolicyRetain), sb.Spec.ShutdownPolicy); diff != "" {
			t.Errorf("shutdownPolicy (-want,+got):\n%s", diff)
		}
		if sb.Spec.Service != nil {
			t.Errorf("service = %v, want unset (nil is meaningful)", *sb.Spec.Service)
		}
	})

	t.Run("SandboxTemplate", func(t *testing.T) {
		tmpl, err := c.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, newTemplate(ns, "defaults"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := [3]string{"Managed", "Disallowed", "Disallowed"}
		got := [3]string{string(tmpl.Spec.NetworkPolicyManagement), string(tmpl.Spec.EnvVarsInjectionPolicy),
			string(tmpl.Spec.VolumeClaimTemplatesPolicy)}
		if got != want {
			t.Errorf("networkPolicyManagement, envVarsInjectionPolicy, volumeClaimTemplatesPolicy = %v, want %v", got, want)
		}
	})

	t.Run("SandboxWarmPool", func(t *testing.T) {
		pool, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, newPool(ns, "defaults", "tmpl"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ptr.To[int32](1), pool.Spec.Replicas); diff != "" {
			t.Errorf("replicas (-want,+got):\n%s", diff)
		}
		if pool.Spec.UpdateStrategy != nil {
			t.Errorf("updateStrategy = %+v, want unset (nil behaves as OnReplenish)", pool.Spec.UpdateStrategy)
		}
		withStrategy := newPool(ns, "with-strategy", "tmpl")
		withStrategy.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{}
		pool, err = c.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, withStrategy, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pool.Spec.UpdateStrategy.Type != extv1beta1.OnReplenishSandboxWarmPoolUpdateStrategyType {
			t.Errorf("updateStrategy.type = %q, want OnReplenish", pool.Spec.UpdateStrategy.Type)
		}
		zero, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, newPoolWithReplicas(ns, "cold-only", "tmpl", 0), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ptr.To[int32](0), zero.Spec.Replicas); diff != "" {
			t.Errorf("explicit replicas 0 must survive defaulting (-want,+got):\n%s", diff)
		}
	})

	t.Run("SandboxClaim", func(t *testing.T) {
		claim, err := c.ExtensionsV1beta1().SandboxClaims(ns).Create(ctx, newClaim(ns, "no-lifecycle"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if claim.Spec.Lifecycle != nil {
			t.Errorf("lifecycle = %+v, want unset", claim.Spec.Lifecycle)
		}
		withLifecycle := newClaim(ns, "with-lifecycle")
		withLifecycle.Spec.Lifecycle = &extv1beta1.Lifecycle{TTLSecondsAfterFinished: ptr.To[int32](30)}
		claim, err = c.ExtensionsV1beta1().SandboxClaims(ns).Create(ctx, withLifecycle, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if claim.Spec.Lifecycle.ShutdownPolicy != extv1beta1.ShutdownPolicyRetain {
			t.Errorf("lifecycle.shutdownPolicy = %q, want Retain", claim.Spec.Lifecycle.ShutdownPolicy)
		}
	})
}
