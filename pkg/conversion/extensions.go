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

package conversion

import (
	"fmt"
	"strings"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

const (
	extHub   = extv1beta1.GroupName + "/v1beta1"
	extSpoke = extv1alpha1.GroupName + "/v1alpha1"
)

// withoutSuffix is a warm Sandbox's pool name: its name minus the
// generateName suffix ("pool-x7k2p" -> "pool").
func withoutSuffix(name string) string {
	if i := strings.LastIndex(name, "-"); i > 0 {
		return name[:i]
	}
	return name
}

// SandboxClaimToHub converts a v1alpha1 claim. v1beta1 names a pool where
// v1alpha1 named a template and a pool policy: a specific pool is kept; a
// warm-bound claim's pool is read from its Sandbox's name; otherwise the
// claim points at the shadow pool of its template (a zero-replica pool the
// migration creates, so "none" still means a cold start).
func SandboxClaimToHub(in *extv1alpha1.SandboxClaim) (*extv1beta1.SandboxClaim, error) {
	out := &extv1beta1.SandboxClaim{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extHub, extv1beta1.SandboxClaimKind
	delete(out.Annotations, extv1beta1.SandboxClaimStateAnnotation)

	s := in.Spec.DeepCopy()
	switch bound := in.Status.SandboxStatus.Name; {
	case s.WarmPool != nil && s.WarmPool.IsSpecificPool():
		out.Spec.WarmPoolRef.Name = string(*s.WarmPool)
	case bound != "" && bound != in.Name:
		out.Spec.WarmPoolRef.Name = withoutSuffix(bound)
	default:
		out.Spec.WarmPoolRef.Name = extv1beta1.ShadowPoolPrefix + s.TemplateRef.Name
	}
	if s.Lifecycle != nil {
		out.Spec.Lifecycle = &extv1beta1.Lifecycle{
			ShutdownTime:            s.Lifecycle.ShutdownTime,
			TTLSecondsAfterFinished: s.Lifecycle.TTLSecondsAfterFinished,
			ShutdownPolicy:          extv1beta1.ShutdownPolicy(s.Lifecycle.ShutdownPolicy),
		}
	}
	out.Spec.AdditionalPodMetadata = agentsv1beta1.PodMetadata{
		Labels: s.AdditionalPodMetadata.Labels, Annotations: s.AdditionalPodMetadata.Annotations,
	}
	if s.Env != nil {
		out.Spec.Env = make([]extv1beta1.EnvVar, len(s.Env))
		for i, e := range s.Env {
			out.Spec.Env[i] = extv1beta1.EnvVar(e)
		}
	}
	st := in.Status.DeepCopy()
	out.Status = extv1beta1.SandboxClaimStatus{
		Conditions:    st.Conditions,
		SandboxStatus: extv1beta1.SandboxStatus{Name: st.SandboxStatus.Name, PodIPs: st.SandboxStatus.PodIPs},
	}

	saved := in.DeepCopy()
	saved.ObjectMeta = stateMeta(in.ObjectMeta, extv1beta1.SandboxClaimStateAnnotation)
	return out, saveState(&out.ObjectMeta, extv1beta1.SandboxClaimStateAnnotation, saved)
}

// SandboxClaimFromHub converts a v1beta1 claim. Without saved state the
// template is a guess (the pool's name, or a shadow pool's template);
// with it, the original template and policy come back unless the pool was
// changed through v1beta1 since. spec.volumeClaimTemplates has no
// v1alpha1 form and is not shown.
func SandboxClaimFromHub(in *extv1beta1.SandboxClaim) (*extv1alpha1.SandboxClaim, error) {
	out := &extv1alpha1.SandboxClaim{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extSpoke, extv1alpha1.SandboxClaimKind
	var saved extv1alpha1.SandboxClaim
	hasState, err := takeState(&out.ObjectMeta, extv1beta1.SandboxClaimStateAnnotation, &saved)
	if err != nil {
		return nil, err
	}

	s := in.Spec.DeepCopy()
	pool := s.WarmPoolRef.Name
	policy := func(p extv1alpha1.WarmPoolPolicy) *extv1alpha1.WarmPoolPolicy { return &p }
	switch {
	case hasState:
		expected := saved.Spec.TemplateRef.Name
		if saved.Spec.WarmPool != nil && saved.Spec.WarmPool.IsSpecificPool() {
			expected = string(*saved.Spec.WarmPool)
		}
		bound := in.Status.SandboxStatus.Name
		unchanged := pool == expected || pool == extv1beta1.ShadowPoolPrefix+expected ||
			(bound != "" && (pool == bound || pool == withoutSuffix(bound)))
		out.Spec.TemplateRef = saved.Spec.TemplateRef
		if unchanged {
			out.Spec.WarmPool = saved.Spec.WarmPool
		} else {
			out.Spec.WarmPool = policy(extv1alpha1.WarmPoolPolicy(pool))
		}
	case strings.HasPrefix(pool, extv1beta1.ShadowPoolPrefix):
		out.Spec.TemplateRef.Name = strings.TrimPrefix(pool, extv1beta1.ShadowPoolPrefix)
		out.Spec.WarmPool = policy(extv1alpha1.WarmPoolPolicyDefault)
	default:
		out.Spec.TemplateRef.Name = pool
		out.Spec.WarmPool = policy(extv1alpha1.WarmPoolPolicy(pool))
	}
	if s.Lifecycle != nil {
		out.Spec.Lifecycle = &extv1alpha1.Lifecycle{
			ShutdownTime:            s.Lifecycle.ShutdownTime,
			TTLSecondsAfterFinished: s.Lifecycle.TTLSecondsAfterFinished,
			ShutdownPolicy:          extv1alpha1.ShutdownPolicy(s.Lifecycle.ShutdownPolicy),
		}
	}
	out.Spec.AdditionalPodMetadata.Labels = s.AdditionalPodMetadata.Labels
	out.Spec.AdditionalPodMetadata.Annotations = s.AdditionalPodMetadata.Annotations
	if s.Env != nil {
		out.Spec.Env = make([]extv1alpha1.EnvVar, len(s.Env))
		for i, e := range s.Env {
			out.Spec.Env[i] = extv1alpha1.EnvVar(e)
		}
	}
	st := in.Status.DeepCopy()
	out.Status = extv1alpha1.SandboxClaimStatus{
		Conditions:    st.Conditions,
		SandboxStatus: extv1alpha1.SandboxStatus{Name: st.SandboxStatus.Name, PodIPs: st.SandboxStatus.PodIPs},
	}
	return out, nil
}

// SandboxTemplateToHub converts a v1alpha1 template; the v1beta1-only
// volumeClaimTemplatesPolicy comes back from its annotation.
func SandboxTemplateToHub(in *extv1alpha1.SandboxTemplate) (*extv1beta1.SandboxTemplate, error) {
	out := &extv1beta1.SandboxTemplate{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extHub, extv1beta1.SandboxTemplateKind
	delete(out.Annotations, extv1beta1.SandboxTemplateStateAnnotation)
	if v, ok := out.Annotations[extv1beta1.VolumeClaimTemplatesPolicyAnnotation]; ok {
		switch p := extv1beta1.VolumeClaimTemplatesPolicy(v); p {
		case extv1beta1.VolumeClaimTemplatesPolicyDisallowed, extv1beta1.VolumeClaimTemplatesPolicyAllowed, extv1beta1.VolumeClaimTemplatesPolicyOverrides:
			out.Spec.VolumeClaimTemplatesPolicy = p
		default:
			return nil, fmt.Errorf("annotation %s: invalid volumeClaimTemplatesPolicy %q (want Disallowed, Allowed or Overrides)",
				extv1beta1.VolumeClaimTemplatesPolicyAnnotation, v)
		}
		delete(out.Annotations, extv1beta1.VolumeClaimTemplatesPolicyAnnotation)
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	s := in.Spec.DeepCopy()
	out.Spec.PodTemplate = podTemplateToHub(s.PodTemplate)
	out.Spec.VolumeClaimTemplates = vctsToHub(s.VolumeClaimTemplates)
	out.Spec.Service = s.Service
	if s.NetworkPolicy != nil {
		out.Spec.NetworkPolicy = &extv1beta1.NetworkPolicySpec{Ingress: s.NetworkPolicy.Ingress, Egress: s.NetworkPolicy.Egress}
	}
	out.Spec.NetworkPolicyManagement = extv1beta1.NetworkPolicyManagement(s.NetworkPolicyManagement)
	out.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicy(s.EnvVarsInjectionPolicy)

	saved := in.DeepCopy()
	saved.ObjectMeta = stateMeta(in.ObjectMeta, extv1beta1.SandboxTemplateStateAnnotation)
	return out, saveState(&out.ObjectMeta, extv1beta1.SandboxTemplateStateAnnotation, saved)
}

// SandboxTemplateFromHub converts a v1beta1 template, carrying
// volumeClaimTemplatesPolicy in an annotation.
func SandboxTemplateFromHub(in *extv1beta1.SandboxTemplate) (*extv1alpha1.SandboxTemplate, error) {
	out := &extv1alpha1.SandboxTemplate{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extSpoke, extv1alpha1.SandboxTemplateKind
	if _, err := takeState(&out.ObjectMeta, extv1beta1.SandboxTemplateStateAnnotation, &extv1alpha1.SandboxTemplate{}); err != nil {
		return nil, err
	}
	if p := in.Spec.VolumeClaimTemplatesPolicy; p != "" {
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[extv1beta1.VolumeClaimTemplatesPolicyAnnotation] = string(p)
	} else {
		delete(out.Annotations, extv1beta1.VolumeClaimTemplatesPolicyAnnotation)
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	s := in.Spec.DeepCopy()
	out.Spec.PodTemplate = podTemplateFromHub(s.PodTemplate)
	out.Spec.VolumeClaimTemplates = vctsFromHub(s.VolumeClaimTemplates)
	out.Spec.Service = s.Service
	if s.NetworkPolicy != nil {
		out.Spec.NetworkPolicy = &extv1alpha1.NetworkPolicySpec{Ingress: s.NetworkPolicy.Ingress, Egress: s.NetworkPolicy.Egress}
	}
	out.Spec.NetworkPolicyManagement = extv1alpha1.NetworkPolicyManagement(s.NetworkPolicyManagement)
	out.Spec.EnvVarsInjectionPolicy = extv1alpha1.EnvVarsInjectionPolicy(s.EnvVarsInjectionPolicy)
	return out, nil
}

// SandboxWarmPoolToHub converts a v1alpha1 pool.
func SandboxWarmPoolToHub(in *extv1alpha1.SandboxWarmPool) (*extv1beta1.SandboxWarmPool, error) {
	out := &extv1beta1.SandboxWarmPool{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extHub, extv1beta1.SandboxWarmPoolKind
	delete(out.Annotations, extv1beta1.SandboxWarmPoolStateAnnotation)
	replicas := in.Spec.Replicas
	out.Spec.Replicas = &replicas
	out.Spec.TemplateRef.Name = in.Spec.TemplateRef.Name
	if u := in.Spec.UpdateStrategy; u != nil {
		out.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{Type: extv1beta1.SandboxWarmPoolUpdateStrategyType(u.Type)}
	}
	out.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: in.Status.Replicas, ReadyReplicas: in.Status.ReadyReplicas, Selector: in.Status.Selector}

	saved := in.DeepCopy()
	saved.ObjectMeta = stateMeta(in.ObjectMeta, extv1beta1.SandboxWarmPoolStateAnnotation)
	return out, saveState(&out.ObjectMeta, extv1beta1.SandboxWarmPoolStateAnnotation, saved)
}

// SandboxWarmPoolFromHub converts a v1beta1 pool; unset replicas means 1.
func SandboxWarmPoolFromHub(in *extv1beta1.SandboxWarmPool) (*extv1alpha1.SandboxWarmPool, error) {
	out := &extv1alpha1.SandboxWarmPool{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.APIVersion, out.Kind = extSpoke, extv1alpha1.SandboxWarmPoolKind
	if _, err := takeState(&out.ObjectMeta, extv1beta1.SandboxWarmPoolStateAnnotation, &extv1alpha1.SandboxWarmPool{}); err != nil {
		return nil, err
	}
	out.Spec.Replicas = 1
	if in.Spec.Replicas != nil {
		out.Spec.Replicas = *in.Spec.Replicas
	}
	out.Spec.TemplateRef.Name = in.Spec.TemplateRef.Name
	if u := in.Spec.UpdateStrategy; u != nil {
		out.Spec.UpdateStrategy = &extv1alpha1.SandboxWarmPoolUpdateStrategy{Type: extv1alpha1.SandboxWarmPoolUpdateStrategyType(u.Type)}
	}
	out.Status = extv1alpha1.SandboxWarmPoolStatus{Replicas: in.Status.Replicas, ReadyReplicas: in.Status.ReadyReplicas, Selector: in.Status.Selector}
	return out, nil
}
