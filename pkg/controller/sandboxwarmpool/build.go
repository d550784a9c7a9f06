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
	"encoding/json"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// templateHashes are the two label values that record which template a
// member was made from: the blueprint hash (current) and the pod-template
// hash (deprecated, kept for external readers).
type templateHashes struct {
	blueprint, podTemplate string
}

// hashTemplate hashes the template as stored (before secure defaults),
// with Go's JSON encoding of the API structs, as the reference does.
func hashTemplate(tmpl *extv1beta1.SandboxTemplate) (templateHashes, error) {
	bp, err := json.Marshal(tmpl.Spec.SandboxBlueprint)
	if err != nil {
		return templateHashes{}, err
	}
	pt, err := json.Marshal(tmpl.Spec.PodTemplate)
	if err != nil {
		return templateHashes{}, err
	}
	return templateHashes{blueprint: agentsv1beta1.NameHash(string(bp)), podTemplate: agentsv1beta1.NameHash(string(pt))}, nil
}

// newMember builds the Sandbox a pool creates: the template's blueprint
// with secure defaults, pool and template labels on the Sandbox and its pod
// template, and the pool as controller. generateName gives each its name.
func newMember(pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, hashes templateHashes, evictable bool) *agentsv1beta1.Sandbox {
	labels := map[string]string{
		agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash(pool.Name),
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
		agentsv1beta1.SandboxPodTemplateHashLabel: hashes.podTemplate,
		agentsv1beta1.SandboxTemplateHashLabel:    hashes.blueprint,
	}
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    pool.Name + "-",
			Namespace:       pool.Namespace,
			Labels:          map[string]string{agentsv1beta1.LaunchTypeLabel: agentsv1beta1.LaunchTypeWarm, agentsv1beta1.CreatedByLabel: agentsv1beta1.CreatedByController},
			Annotations:     map[string]string{agentsv1beta1.SandboxTemplateRefAnnotation: tmpl.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy()},
	}
	pm := &sb.Spec.PodTemplate.ObjectMeta
	if pm.Labels == nil {
		pm.Labels = map[string]string{}
	}
	for k, v := range labels {
		sb.Labels[k] = v
		pm.Labels[k] = v
	}
	if _, set := pm.Annotations[agentsv1beta1.SafeToEvictAnnotation]; evictable && !set {
		if pm.Annotations == nil {
			pm.Annotations = map[string]string{}
		}
		// An idle warm Pod may be evicted by the cluster autoscaler; the
		// claim removes this at adoption.
		pm.Annotations[agentsv1beta1.SafeToEvictAnnotation] = "true"
	}
	controller.ApplySecureDefaults(tmpl, &sb.Spec.PodTemplate.Spec)
	return sb
}

// stalenessChecker decides whether members still match the template. Label
// edits never make a member stale; what runs does.
type stalenessChecker struct {
	tmpl   *extv1beta1.SandboxTemplate
	hashes templateHashes
	hashOK bool
	// byHash caches verdicts per member hash label within one pass.
	byHash map[string]bool
}

func newStalenessChecker(tmpl *extv1beta1.SandboxTemplate) *stalenessChecker {
	h, err := hashTemplate(tmpl)
	return &stalenessChecker{tmpl: tmpl, hashes: h, hashOK: err == nil, byHash: map[string]bool{}}
}

func (s *stalenessChecker) stale(sb *agentsv1beta1.Sandbox, orphan bool) bool {
	if sb.Labels[agentsv1beta1.SandboxTemplateRefHashLabel] != agentsv1beta1.NameHash(s.tmpl.Name) {
		return true
	}
	if orphan {
		return !s.sameBlueprint(sb)
	}
	label := sb.Labels[agentsv1beta1.SandboxTemplateHashLabel]
	if !s.hashOK || label == s.hashes.blueprint {
		// Never mass-delete because a hash could not be computed.
		return false
	}
	if v, ok := s.byHash[label]; ok {
		return v
	}
	v := !s.sameBlueprint(sb)
	s.byHash[label] = v
	return v
}

// sameBlueprint compares what runs: the pod spec after the same secure
// defaults, volume claim templates by position (name and spec), and the
// service pointer; metadata is ignored.
func (s *stalenessChecker) sameBlueprint(sb *agentsv1beta1.Sandbox) bool {
	want := s.tmpl.Spec.PodTemplate.Spec.DeepCopy()
	controller.ApplySecureDefaults(s.tmpl, want)
	if !equality.Semantic.DeepEqual(*want, sb.Spec.PodTemplate.Spec) {
		return false
	}
	a, b := s.tmpl.Spec.VolumeClaimTemplates, sb.Spec.VolumeClaimTemplates
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !equality.Semantic.DeepEqual(a[i].Spec, b[i].Spec) {
			return false
		}
	}
	x, y := s.tmpl.Spec.Service, sb.Spec.Service
	return (x == nil) == (y == nil) && (x == nil || *x == *y)
}
