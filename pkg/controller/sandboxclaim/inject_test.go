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
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func reasonOf(err error) string {
	var ce *claimError
	if errors.As(err, &ce) {
		return ce.reason
	}
	if err != nil {
		return "error"
	}
	return ""
}

func TestInjectEnv(t *testing.T) {
	spec := func() *corev1.PodSpec {
		return &corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers: []corev1.Container{
				{Name: "main", Env: []corev1.EnvVar{{Name: "HOME", Value: "/root"}}},
				{Name: "side"},
			},
		}
	}
	env := func(vs ...extv1beta1.EnvVar) *extv1beta1.SandboxClaim {
		c := claimWith(nil, nil)
		c.Spec.Env = vs
		return c
	}
	tests := map[string]struct {
		policy     extv1beta1.EnvVarsInjectionPolicy
		claim      *extv1beta1.SandboxClaim
		envFrom    bool
		wantReason string
		want       map[string][]corev1.EnvVar // container -> env
	}{
		"disallowed by default": {claim: env(extv1beta1.EnvVar{Name: "A", Value: "1"}), wantReason: extv1beta1.ClaimReasonEnvVarsRejected},
		"allowed: untargeted to the first container, targeted where aimed": {
			policy: extv1beta1.EnvVarsInjectionPolicyAllowed,
			claim:  env(extv1beta1.EnvVar{Name: "A", Value: "1"}, extv1beta1.EnvVar{Name: "B", Value: "2", ContainerName: "init"}, extv1beta1.EnvVar{Name: "C", Value: "3", ContainerName: "side"}),
			want: map[string][]corev1.EnvVar{
				"init": {{Name: "B", Value: "2"}},
				"main": {{Name: "HOME", Value: "/root"}, {Name: "A", Value: "1"}},
				"side": {{Name: "C", Value: "3"}},
			},
		},
		"allowed refuses an override": {
			policy: extv1beta1.EnvVarsInjectionPolicyAllowed, claim: env(extv1beta1.EnvVar{Name: "HOME", Value: "/tmp"}), wantReason: extv1beta1.ClaimReasonEnvVarsRejected,
		},
		"allowed refuses envFrom containers": {
			policy: extv1beta1.EnvVarsInjectionPolicyAllowed, claim: env(extv1beta1.EnvVar{Name: "A", Value: "1"}), envFrom: true,
			wantReason: extv1beta1.ClaimReasonEnvVarsRejected,
		},
		"overrides replaces": {
			policy: extv1beta1.EnvVarsInjectionPolicyOverrides, claim: env(extv1beta1.EnvVar{Name: "HOME", Value: "/tmp"}),
			want: map[string][]corev1.EnvVar{"main": {{Name: "HOME", Value: "/tmp"}}},
		},
		"unknown container": {
			policy: extv1beta1.EnvVarsInjectionPolicyOverrides, claim: env(extv1beta1.EnvVar{Name: "A", Value: "1", ContainerName: "nope"}), wantReason: extv1beta1.ClaimReasonEnvVarsRejected,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl := &extv1beta1.SandboxTemplate{Spec: extv1beta1.SandboxTemplateSpec{EnvVarsInjectionPolicy: tc.policy}}
			s := spec()
			if tc.envFrom {
				s.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "X"}}
			}
			err := injectEnv(tmpl, tc.claim, s)
			if got := reasonOf(err); got != tc.wantReason {
				t.Fatalf("err %v (reason %q), want reason %q", err, got, tc.wantReason)
			}
			for ctr, want := range tc.want {
				var got []corev1.EnvVar
				for _, c := range append(s.InitContainers, s.Containers...) {
					if c.Name == ctr {
						got = c.Env
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("container %s env (-want,+got):\n%s", ctr, diff)
				}
			}
		})
	}
}

func TestMergeVolumeClaimTemplates(t *testing.T) {
	vct := func(name, size string) agentsv1beta1.PersistentVolumeClaimTemplate {
		v := agentsv1beta1.PersistentVolumeClaimTemplate{}
		v.Name = name
		v.Spec.VolumeName = size // a stand-in field to tell entries apart
		return v
	}
	base := []agentsv1beta1.PersistentVolumeClaimTemplate{vct("data", "t1"), vct("cache", "t2")}
	tests := map[string]struct {
		policy     extv1beta1.VolumeClaimTemplatesPolicy
		claim      []agentsv1beta1.PersistentVolumeClaimTemplate
		wantReason string
		want       []string
	}{
		"none from the claim":  {want: []string{"data=t1", "cache=t2"}},
		"disallowed":           {claim: []agentsv1beta1.PersistentVolumeClaimTemplate{vct("x", "c")}, wantReason: extv1beta1.ClaimReasonVolumeClaimTemplates},
		"allowed appends":      {policy: "Allowed", claim: []agentsv1beta1.PersistentVolumeClaimTemplate{vct("x", "c")}, want: []string{"data=t1", "cache=t2", "x=c"}},
		"allowed clash":        {policy: "Allowed", claim: []agentsv1beta1.PersistentVolumeClaimTemplate{vct("data", "c")}, wantReason: extv1beta1.ClaimReasonVolumeClaimTemplates},
		"overrides in place":   {policy: "Overrides", claim: []agentsv1beta1.PersistentVolumeClaimTemplate{vct("x", "c"), vct("data", "c")}, want: []string{"data=c", "cache=t2", "x=c"}},
		"duplicate claim name": {policy: "Overrides", claim: []agentsv1beta1.PersistentVolumeClaimTemplate{vct("x", "a"), vct("x", "b")}, wantReason: extv1beta1.ClaimReasonVolumeClaimTemplates},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl := &extv1beta1.SandboxTemplate{}
			tmpl.Spec.VolumeClaimTemplates = base
			tmpl.Spec.VolumeClaimTemplatesPolicy = tc.policy
			c := claimWith(nil, nil)
			c.Spec.VolumeClaimTemplates = tc.claim
			got, err := mergeVolumeClaimTemplates(tmpl, c)
			if r := reasonOf(err); r != tc.wantReason {
				t.Fatalf("err %v, want reason %q", err, tc.wantReason)
			}
			if err != nil {
				return
			}
			var names []string
			for _, v := range got {
				names = append(names, v.Name+"="+v.Spec.VolumeName)
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("merged (-want,+got):\n%s", diff)
			}
			if !strings.Contains(strings.Join(names, ","), "cache=t2") {
				t.Errorf("template entry lost: %v", names)
			}
		})
	}
}
