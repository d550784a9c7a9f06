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
	corev1 "k8s.io/api/core/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// mergeVolumeClaimTemplates combines the template's PVC templates with the
// claim's as the template's volumeClaimTemplatesPolicy allows: Allowed
// appends new names only, Overrides replaces same-named entries in place
// and appends the rest; Disallowed (the default) refuses any.
func mergeVolumeClaimTemplates(tmpl *extv1beta1.SandboxTemplate, claim *extv1beta1.SandboxClaim) ([]agentsv1beta1.PersistentVolumeClaimTemplate, error) {
	base := tmpl.Spec.VolumeClaimTemplates
	if err := checkVCTNames(base, "template"); err != nil {
		return nil, err
	}
	extra := claim.Spec.VolumeClaimTemplates
	if len(extra) == 0 {
		return base, nil
	}
	if err := checkVCTNames(extra, "claim"); err != nil {
		return nil, err
	}
	inBase := map[string]int{}
	for i := range base {
		inBase[base[i].Name] = i
	}
	out := make([]agentsv1beta1.PersistentVolumeClaimTemplate, 0, len(base)+len(extra))
	for i := range base {
		out = append(out, *base[i].DeepCopy())
	}
	switch tmpl.Spec.VolumeClaimTemplatesPolicy {
	case extv1beta1.VolumeClaimTemplatesPolicyAllowed:
		for i := range extra {
			if _, clash := inBase[extra[i].Name]; clash {
				return nil, claimErrorf(extv1beta1.ClaimReasonVolumeClaimTemplates,
					"volumeClaimTemplate %q is already defined by the template, and its policy Allowed does not permit overriding it", extra[i].Name)
			}
			out = append(out, *extra[i].DeepCopy())
		}
	case extv1beta1.VolumeClaimTemplatesPolicyOverrides:
		for i := range extra {
			if j, ok := inBase[extra[i].Name]; ok {
				out[j] = *extra[i].DeepCopy()
			} else {
				out = append(out, *extra[i].DeepCopy())
			}
		}
	default:
		return nil, claimErrorf(extv1beta1.ClaimReasonVolumeClaimTemplates,
			"the template's volumeClaimTemplatesPolicy does not allow claims to set volumeClaimTemplates")
	}
	return out, nil
}

func checkVCTNames(vcts []agentsv1beta1.PersistentVolumeClaimTemplate, whose string) error {
	seen := map[string]bool{}
	for i := range vcts {
		v := &vcts[i]
		switch {
		case v.Name == "":
			return claimErrorf(extv1beta1.ClaimReasonVolumeClaimTemplates, "a %s volumeClaimTemplate has no name", whose)
		case seen[v.Name]:
			return claimErrorf(extv1beta1.ClaimReasonVolumeClaimTemplates, "%s volumeClaimTemplate %q is defined twice", whose, v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// injectEnv adds the claim's environment variables to the pod spec as the
// template's envVarsInjectionPolicy allows. Untargeted variables go to the
// first container; init containers get only those aimed at them. Allowed
// adds new names only (and refuses containers with envFrom, whose names
// could be overridden unseen); Overrides also replaces.
func injectEnv(tmpl *extv1beta1.SandboxTemplate, claim *extv1beta1.SandboxClaim, spec *corev1.PodSpec) error {
	if len(claim.Spec.Env) == 0 {
		return nil
	}
	policy := tmpl.Spec.EnvVarsInjectionPolicy
	if policy != extv1beta1.EnvVarsInjectionPolicyAllowed && policy != extv1beta1.EnvVarsInjectionPolicyOverrides {
		return claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected, "environment variable injection is not allowed by the template policy")
	}
	targets := map[string]*corev1.Container{}
	for i := range spec.InitContainers {
		targets[spec.InitContainers[i].Name] = &spec.InitContainers[i]
	}
	for i := range spec.Containers {
		targets[spec.Containers[i].Name] = &spec.Containers[i]
	}
	perContainer := map[*corev1.Container][]extv1beta1.EnvVar{}
	var order []*corev1.Container
	add := func(ctr *corev1.Container, v extv1beta1.EnvVar) {
		if _, ok := perContainer[ctr]; !ok {
			order = append(order, ctr)
		}
		perContainer[ctr] = append(perContainer[ctr], v)
	}
	var untargeted []extv1beta1.EnvVar
	for _, v := range claim.Spec.Env {
		if v.ContainerName == "" {
			untargeted = append(untargeted, v)
			continue
		}
		ctr, ok := targets[v.ContainerName]
		if !ok {
			return claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected, "target container %q not found in template for environment variable %q", v.ContainerName, v.Name)
		}
		add(ctr, v)
	}
	if len(untargeted) > 0 {
		if len(spec.Containers) == 0 {
			return claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected, "the template has no container to receive environment variables")
		}
		for _, v := range untargeted {
			add(&spec.Containers[0], v)
		}
	}
	for _, ctr := range order {
		if policy == extv1beta1.EnvVarsInjectionPolicyAllowed && len(ctr.EnvFrom) > 0 {
			return claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected,
				"container %q uses envFrom, so injected variables could silently override it; the template policy Allowed forbids that", ctr.Name)
		}
		for _, v := range perContainer[ctr] {
			replaced := false
			for i := range ctr.Env {
				if ctr.Env[i].Name != v.Name {
					continue
				}
				if policy == extv1beta1.EnvVarsInjectionPolicyAllowed {
					return claimErrorf(extv1beta1.ClaimReasonEnvVarsRejected, "environment variable override is not allowed by the template policy for variable %q", v.Name)
				}
				ctr.Env[i] = corev1.EnvVar{Name: v.Name, Value: v.Value}
				replaced = true
			}
			if !replaced {
				ctr.Env = append(ctr.Env, corev1.EnvVar{Name: v.Name, Value: v.Value})
			}
		}
	}
	return nil
}
