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

package controller

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func member(name, hash, image string) *agentsv1beta1.Sandbox {
	return &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{agentsv1beta1.SandboxPodTemplateHashLabel: hash}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
			ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "x"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
		}}},
	}
}

func TestPodTemplateInternerSharesIdenticalTemplates(t *testing.T) {
	transform := NewCacheTransform().Transform
	var got []*agentsv1beta1.Sandbox
	for _, sb := range []*agentsv1beta1.Sandbox{
		member("a", "h1", "img:1"),
		member("b", "h1", "img:1"),
		member("c", "h1", "img:1"),
		// Forged: the pool's hash label on another spec.
		member("forged", "h1", "attacker:latest"),
		// Another namespace never shares with the first.
		func() *agentsv1beta1.Sandbox { sb := member("d", "h1", "img:1"); sb.Namespace = "other"; return sb }(),
	} {
		out, err := transform(sb)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.(*agentsv1beta1.Sandbox))
	}
	a, b, c, forged, other := got[0], got[1], got[2], got[3], got[4]
	shared := func(x, y *agentsv1beta1.Sandbox) bool {
		return &x.Spec.PodTemplate.Spec.Containers[0] == &y.Spec.PodTemplate.Spec.Containers[0]
	}
	if !shared(b, c) {
		t.Error("identical pod templates of one pool are not shared")
	}
	if shared(a, b) {
		// The first one seeds the interner with a copy of its own.
		t.Error("the first member's template was shared, not copied")
	}
	if shared(forged, b) || forged.Spec.PodTemplate.Spec.Containers[0].Image != "attacker:latest" {
		t.Errorf("a forged member's spec was replaced or shared: image %q", forged.Spec.PodTemplate.Spec.Containers[0].Image)
	}
	if shared(other, b) {
		t.Error("a template was shared across namespaces")
	}
	// A DeepCopy, where every write starts, owns what it changes.
	cp := b.DeepCopy()
	cp.Spec.PodTemplate.Spec.Containers[0].Image = "changed"
	cp.Spec.PodTemplate.ObjectMeta.Labels["app"] = "changed"
	if c.Spec.PodTemplate.Spec.Containers[0].Image != "img:1" || c.Spec.PodTemplate.ObjectMeta.Labels["app"] != "x" {
		t.Error("changing a deep copy changed another cached Sandbox")
	}
}

func TestPodTemplateInternerSkipsUnlabelled(t *testing.T) {
	in := NewPodTemplateInterner()
	sb := member("a", "", "img:1")
	in.Intern(sb)
	if in.Len() != 0 {
		t.Errorf("a Sandbox without the hash label was interned: %d", in.Len())
	}
}

// A full interner starts afresh instead of refusing new templates, so its
// memory stays bounded and interning keeps working after many template
// changes.
func TestPodTemplateInternerStartsAfreshWhenFull(t *testing.T) {
	in := NewPodTemplateInterner()
	for n := range maxInternedTemplates {
		in.Intern(member("m", "old-"+strconv.Itoa(n), "img:1"))
	}
	if in.Len() != maxInternedTemplates {
		t.Fatalf("Len = %d, want %d", in.Len(), maxInternedTemplates)
	}
	in.Intern(member("a", "new", "img:2"))
	b := member("b", "new", "img:2")
	in.Intern(b)
	c := member("c", "new", "img:2")
	in.Intern(c)
	if in.Len() != 1 || &b.Spec.PodTemplate.Spec.Containers[0] != &c.Spec.PodTemplate.Spec.Containers[0] {
		t.Errorf("after filling up: Len %d, new template shared %v; want 1 and true",
			in.Len(), &b.Spec.PodTemplate.Spec.Containers[0] == &c.Spec.PodTemplate.Spec.Containers[0])
	}
}
