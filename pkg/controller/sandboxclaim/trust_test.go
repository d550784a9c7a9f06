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
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	listers "github.com/agentsandbox/agent-sandbox/generated/listers/extensions/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// A Sandbox naming the claim as its controller is the claim's binding only
// when this process bound it, the claim's status names it, or it runs what
// the claim would get; never because of its owner reference alone.
func TestTrustedBinding(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "python", UID: "t", ResourceVersion: "1"}}
	tmpl.Spec.PodTemplate.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}}
	tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
	pool := &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool", UID: "p"},
		Spec: extv1beta1.SandboxWarmPoolSpec{TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}}}
	pools := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	templates := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = pools.Add(pool)
	_ = templates.Add(tmpl)
	newController := func() *Controller {
		return &Controller{
			poolLister: listers.NewSandboxWarmPoolLister(pools), templateLister: listers.NewSandboxTemplateLister(templates),
			sandboxIndexer: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), state: newClaimState(clock.RealClock{}),
		}
	}
	claim := func(env ...extv1beta1.EnvVar) *extv1beta1.SandboxClaim {
		c := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "victim", UID: "claim-uid"},
			Spec: extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "pool"}, Env: env}}
		return c
	}
	// sandbox builds what the cold path builds for c, then edits it.
	sandbox := func(c *extv1beta1.SandboxClaim, name string, uid types.UID, edit func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
		sb, err := buildCold(c, nil, tmpl, sandboxpolicy.SecureDefaults{})
		if err != nil {
			t.Fatal(err)
		}
		sb.Name, sb.UID = name, uid
		if edit != nil {
			edit(sb)
		}
		return sb
	}
	evil := func(sb *agentsv1beta1.Sandbox) { sb.Spec.PodTemplate.Spec.Containers[0].Image = "attacker/exfiltrate" }
	withEnv := claim(extv1beta1.EnvVar{Name: "TOKEN", Value: "x"})

	for name, tc := range map[string]struct {
		claim *extv1beta1.SandboxClaim
		sb    *agentsv1beta1.Sandbox
		bound types.UID // what this process bound the claim to, if anything
		want  bool
	}{
		"what the cold path builds":             {claim(), sandbox(claim(), "victim", "a", nil), "", true},
		"a warm-equivalent copy, other name":    {claim(), sandbox(claim(), "pool-x", "a", nil), "", true},
		"cold build with the claim's env":       {withEnv, sandbox(withEnv, "victim", "a", nil), "", true},
		"the env build under another name":      {withEnv, sandbox(withEnv, "decoy", "a", nil), "", false},
		"without the env the claim asked for":   {withEnv, sandbox(claim(), "victim", "a", nil), "", false},
		"the attacker's image":                  {claim(), sandbox(claim(), "victim", "a", evil), "", false},
		"the attacker's image, other name":      {claim(), sandbox(claim(), "decoy", "a", evil), "", false},
		"tracking another Pod":                  {claim(), sandbox(claim(), "victim", "a", func(sb *agentsv1beta1.Sandbox) { sb.Annotations[agentsv1beta1.PodNameAnnotation] = "p" }), "", false},
		"bound here, same UID (template moved)": {claim(), sandbox(claim(), "victim", "a", evil), "a", true},
		"bound here to another UID":             {claim(), sandbox(claim(), "victim", "b", nil), "a", false},
		"named in the claim's status": {func() *extv1beta1.SandboxClaim {
			c := claim()
			c.Status.SandboxStatus.Name = "victim"
			return c
		}(), sandbox(claim(), "victim", "a", evil), "", true},
	} {
		t.Run(name, func(t *testing.T) {
			c := newController()
			if tc.bound != "" {
				c.state.bind(tc.claim, tc.bound)
			}
			if got := c.trustedBinding(tc.claim, tc.sb); got != tc.want {
				t.Fatalf("trusted = %v, want %v", got, tc.want)
			}
			if uid, _ := c.state.boundTo(tc.claim.UID); tc.want && uid != tc.sb.UID {
				t.Error("an accepted binding was not remembered")
			}
		})
	}
}
