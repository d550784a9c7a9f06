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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// newMember builds the Sandbox a pool creates: the template's blueprint
// with secure defaults, pool and template labels on the Sandbox and its pod
// template, and the pool as controller. generateName gives each its name.
func newMember(pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, hashes sandboxpolicy.TemplateHashes, evictable bool,
	defaults sandboxpolicy.SecureDefaults) *agentsv1beta1.Sandbox {
	labels := map[string]string{
		agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash(pool.Name),
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
		agentsv1beta1.SandboxPodTemplateHashLabel: hashes.PodTemplate,
		agentsv1beta1.SandboxTemplateHashLabel:    hashes.Blueprint,
	}
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    pool.Name + "-",
			Namespace:       pool.Namespace,
			Labels:          map[string]string{agentsv1beta1.LaunchTypeLabel: agentsv1beta1.LaunchTypeWarm, agentsv1beta1.CreatedByLabel: agentsv1beta1.CreatedByController},
			Annotations:     map[string]string{agentsv1beta1.SandboxTemplateRefAnnotation: tmpl.Name, agentsv1beta1.WarmPoolMemberAnnotation: string(pool.UID)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	for k, v := range labels {
		sb.Labels[k] = v
	}
	// The pool's labels stay off the pod template, and so does the eviction
	// hint, which goes on the Sandbox itself: the Sandbox controller puts it
	// on the Pod while the pool controls the Sandbox. The pod template is
	// then exactly the template's, so a claim takes a member without a spec
	// change (docs/controllers/sandboxclaim.md).
	if _, set := sb.Spec.PodTemplate.ObjectMeta.Annotations[agentsv1beta1.SafeToEvictAnnotation]; evictable && !set {
		sb.Annotations[agentsv1beta1.SafeToEvictAnnotation] = "true"
	}
	defaults.Apply(tmpl, &sb.Spec.PodTemplate.Spec)
	return sb
}
