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
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func TestStaleness(t *testing.T) {
	tmpl := func(image string, labels map[string]string) *extv1beta1.SandboxTemplate {
		t := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python"}}
		t.Spec.PodTemplate = agentsv1beta1.PodTemplate{
			ObjectMeta: agentsv1beta1.PodMetadata{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
		}
		return t
	}
	// A member as the pool made it: secure defaults applied, hash labels set.
	member := func(from *extv1beta1.SandboxTemplate, templateName string) *agentsv1beta1.Sandbox {
		h, _ := HashTemplate(from)
		sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(templateName),
			agentsv1beta1.SandboxTemplateHashLabel:    h.Blueprint,
		}}}
		sb.Spec.SandboxBlueprint = *from.Spec.SandboxBlueprint.DeepCopy()
		SecureDefaults{}.Apply(from, &sb.Spec.PodTemplate.Spec)
		return sb
	}
	original := tmpl("python:3.13", map[string]string{"a": "1"})
	tests := map[string]struct {
		current *extv1beta1.SandboxTemplate
		member  *agentsv1beta1.Sandbox
		orphan  bool
		want    bool
	}{
		"unchanged":                     {original, member(original, "python"), false, false},
		"label edit only":               {tmpl("python:3.13", map[string]string{"a": "2"}), member(original, "python"), false, false},
		"label edit only, orphan":       {tmpl("python:3.13", map[string]string{"a": "2"}), member(original, "python"), true, false},
		"image changed":                 {tmpl("python:3.14", nil), member(original, "python"), false, true},
		"image changed, orphan":         {tmpl("python:3.14", nil), member(original, "python"), true, true},
		"pool re-pointed at a template": {original, member(original, "other"), false, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := NewStalenessChecker(tc.current, SecureDefaults{}).Stale(tc.member, tc.orphan); got != tc.want {
				t.Errorf("stale = %v, want %v", got, tc.want)
			}
		})
	}

	// Claims build a checker per sync and only ask Matches: the template's
	// hashes (a JSON encoding of its blueprint) are computed only by Stale.
	c := NewStalenessChecker(original, SecureDefaults{})
	if !c.Matches(member(original, "python")) {
		t.Error("a member built from the template does not match it")
	}
	if c.hashed {
		t.Error("Matches computed the template's hashes")
	}
	c.Stale(member(original, "python"), false)
	if !c.hashed {
		t.Error("Stale of an owned member did not use the template's hashes")
	}
}
