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

package sandboxpolicy

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// TemplateHashes are the two label values that record which template a
// member was made from: the blueprint hash (current) and the pod-template
// hash (deprecated, kept for external readers).
type TemplateHashes struct {
	Blueprint, PodTemplate string
}

// HashTemplate hashes the template as stored (before secure defaults),
// with Go's JSON encoding of the API structs, as the reference does.
func HashTemplate(tmpl *extv1beta1.SandboxTemplate) (TemplateHashes, error) {
	bp, err := json.Marshal(tmpl.Spec.SandboxBlueprint)
	if err != nil {
		return TemplateHashes{}, err
	}
	pt, err := json.Marshal(tmpl.Spec.PodTemplate)
	if err != nil {
		return TemplateHashes{}, err
	}
	return TemplateHashes{Blueprint: agentsv1beta1.NameHash(string(bp)), PodTemplate: agentsv1beta1.NameHash(string(pt))}, nil
}

// StalenessChecker decides whether members still match the template. Label
// edits never make a member stale; what runs does.
type StalenessChecker struct {
	tmpl *extv1beta1.SandboxTemplate
	// refHash is NameHash(tmpl.Name), the template-ref label members carry.
	refHash string
	// hashes are the template's, computed at the first Stale that needs
	// them: claims build a checker per sync and only call Matches.
	hashes TemplateHashes
	hashOK bool
	hashed bool
	// byHash caches verdicts per member hash label within one pass.
	byHash map[string]bool
	// defaults are those the Sandboxes were built with: what they inject
	// is not a difference.
	defaults SecureDefaults
	// want is the template's pod spec after secure defaults, built once.
	want *corev1.PodSpec
}

// NewStalenessChecker judges Sandboxes against tmpl as pools and claims
// build them with defaults.
func NewStalenessChecker(tmpl *extv1beta1.SandboxTemplate, defaults SecureDefaults) *StalenessChecker {
	return &StalenessChecker{tmpl: tmpl, refHash: agentsv1beta1.NameHash(tmpl.Name), defaults: defaults}
}

// blueprintHash is the template's blueprint hash, and whether it could be
// computed.
func (s *StalenessChecker) blueprintHash() (string, bool) {
	if !s.hashed {
		h, err := HashTemplate(s.tmpl)
		s.hashes, s.hashOK, s.hashed = h, err == nil, true
	}
	return s.hashes.Blueprint, s.hashOK
}

// Stale reports whether member sb must be replaced: it is of another
// template, or what it runs differs from the template's blueprint. An
// owned member is judged by its template-hash label first (cached per
// label within the pass); an orphan, whose labels anyone may have written,
// by its spec alone.
func (s *StalenessChecker) Stale(sb *agentsv1beta1.Sandbox, orphan bool) bool {
	if sb.Labels[agentsv1beta1.SandboxTemplateRefHashLabel] != s.refHash {
		return true
	}
	if orphan {
		return !s.sameBlueprint(sb)
	}
	label := sb.Labels[agentsv1beta1.SandboxTemplateHashLabel]
	if blueprint, ok := s.blueprintHash(); !ok || label == blueprint {
		// Never mass-delete because a hash could not be computed.
		return false
	}
	if v, ok := s.byHash[label]; ok {
		return v
	}
	v := !s.sameBlueprint(sb)
	if s.byHash == nil {
		s.byHash = map[string]bool{}
	}
	s.byHash[label] = v
	return v
}

// Matches reports whether sb runs exactly what a member built from the
// template now would run, judged from its spec alone, never from the hash
// labels (anyone who can create a Sandbox can write those): the same
// blueprint (see sameBlueprint), running, with no expiry of its own.
func (s *StalenessChecker) Matches(sb *agentsv1beta1.Sandbox) bool {
	mode := sb.Spec.OperatingMode
	return (mode == "" || mode == agentsv1beta1.SandboxOperatingModeRunning) && sb.Spec.ShutdownTime == nil && s.sameBlueprint(sb)
}

// sameBlueprint compares what runs: the pod spec after the same secure
// defaults, volume claim templates by position (name and spec), and the
// service pointer; metadata is ignored.
func (s *StalenessChecker) sameBlueprint(sb *agentsv1beta1.Sandbox) bool {
	if s.want == nil {
		s.want = s.tmpl.Spec.PodTemplate.Spec.DeepCopy()
		s.defaults.Apply(s.tmpl, s.want)
	}
	if !equality.Semantic.DeepEqual(*s.want, sb.Spec.PodTemplate.Spec) {
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
