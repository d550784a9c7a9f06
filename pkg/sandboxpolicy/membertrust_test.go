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
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// A forged member is judged by what it runs and by what the API server
// assigned, never by the labels or annotations its author chose.
func TestJudgeMember(t *testing.T) {
	const pool = types.UID("pool-uid")
	tmpl := func(image string) *extv1beta1.SandboxTemplate {
		t := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python", UID: "tmpl-uid", ResourceVersion: image}}
		t.Spec.PodTemplate.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}
		return t
	}
	current := tmpl("python:3.14")
	member := func(from *extv1beta1.SandboxTemplate, uid types.UID, edit func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
		h, _ := HashTemplate(current) // the hash labels always claim the current template
		sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "m-" + string(uid), UID: uid, Generation: 1,
			Labels: map[string]string{
				agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
				agentsv1beta1.SandboxTemplateHashLabel:    h.Blueprint,
			},
			Annotations: map[string]string{agentsv1beta1.WarmPoolMemberAnnotation: string(pool)},
		}}
		sb.Spec.SandboxBlueprint = *from.Spec.SandboxBlueprint.DeepCopy()
		SecureDefaults{}.Apply(from, &sb.Spec.PodTemplate.Spec)
		if edit != nil {
			edit(sb)
		}
		return sb
	}
	prov := NewMemberProvenance()
	own := member(tmpl("python:3.13"), "own", nil)
	prov.Created(pool, own)
	ownEdited := member(tmpl("python:3.13"), "own-edited", nil)
	prov.Created(pool, ownEdited)
	ownEdited.Generation = 2 // its spec was changed after the pool made it
	otherPools := member(tmpl("python:3.13"), "other-pool", nil)
	prov.Created("another-pool", otherPools)

	for name, tc := range map[string]struct {
		sb   *agentsv1beta1.Sandbox
		want MemberVerdict
	}{
		"runs the current template":               {member(current, "fresh", nil), MemberCurrent},
		"identical, unmarked (a tenant's copy)":   {member(current, "copy", func(sb *agentsv1beta1.Sandbox) { sb.Annotations = nil }), MemberCurrent},
		"made here from an earlier template":      {own, MemberOwn},
		"made here, spec edited since":            {ownEdited, MemberUnverified},
		"made here by another pool":               {otherPools, MemberUnverified},
		"earlier template, marked, not made here": {member(tmpl("python:3.13"), "old", nil), MemberUnverified},
		"forged image, forged hash labels":        {member(tmpl("evil"), "forged", func(sb *agentsv1beta1.Sandbox) { sb.Annotations = nil }), MemberRefused},
		"forged spec with a current label shortcut": {member(current, "forged2", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations = nil
			sb.Spec.PodTemplate.Spec.Containers[0].Command = []string{"/steal"}
		}), MemberRefused},
		"expires on its author's schedule": {member(current, "expiring", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations = nil
			sb.Spec.ShutdownTime = &metav1.Time{}
		}), MemberRefused},
		"suspended": {member(current, "suspended", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations = nil
			sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
		}), MemberRefused},
		"tracks someone else's Pod": {member(current, "redirect", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations[agentsv1beta1.PodNameAnnotation] = "attacker-pod"
		}), MemberRefused},
		"tracks its own Pod by annotation": {member(current, "self", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations[agentsv1beta1.PodNameAnnotation] = sb.Name
		}), MemberCurrent},
		"volume claim templates added": {member(current, "vct", func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations = nil
			sb.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{{EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "data"}}}
		}), MemberRefused},
	} {
		t.Run(name, func(t *testing.T) {
			matches := NewMatchCache().Matches(NewStalenessChecker(current, SecureDefaults{}), tc.sb)
			if got := JudgeMember(pool, tc.sb, matches, prov); got != tc.want {
				t.Errorf("verdict %d, want %d", got, tc.want)
			}
		})
	}
	if JudgeMember(pool, own, false, nil) != MemberUnverified {
		t.Error("without a provenance record a stale member must not count as the pool's own")
	}
	prov.Forget(own.UID)
	if prov.CreatedBy(pool, own) {
		t.Error("a forgotten member is still known")
	}
}

// The cached verdict follows the member's generation and the template's
// resourceVersion.
func TestMatchCache(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "t", UID: "u", ResourceVersion: "1"}}
	tmpl.Spec.PodTemplate.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "a"}}}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{UID: "m", Generation: 1}}
	sb.Spec.SandboxBlueprint = *tmpl.Spec.SandboxBlueprint.DeepCopy()
	SecureDefaults{}.Apply(tmpl, &sb.Spec.PodTemplate.Spec)
	c := NewMatchCache()
	if !c.Matches(NewStalenessChecker(tmpl, SecureDefaults{}), sb) {
		t.Fatal("a member built from the template does not match it")
	}
	sb.Spec.PodTemplate.Spec.Containers[0].Image = "evil"
	if !c.Matches(NewStalenessChecker(tmpl, SecureDefaults{}), sb) {
		t.Fatal("same generation: the cached verdict should stand")
	}
	sb.Generation = 2
	if c.Matches(NewStalenessChecker(tmpl, SecureDefaults{}), sb) {
		t.Error("a spec change (new generation) was not compared again")
	}
	sb.Spec.PodTemplate.Spec.Containers[0].Image = "a"
	sb.Generation = 3
	tmpl2 := tmpl.DeepCopy()
	tmpl2.ResourceVersion = "2"
	tmpl2.Spec.PodTemplate.Spec.Containers[0].Image = "b"
	c.Matches(NewStalenessChecker(tmpl, SecureDefaults{}), sb)
	if c.Matches(NewStalenessChecker(tmpl2, SecureDefaults{}), sb) {
		t.Error("a template change was not compared again")
	}
	// A pool's sync asks once per member: a cached verdict costs no
	// allocation.
	checker := NewStalenessChecker(tmpl2, SecureDefaults{})
	if allocs := testing.AllocsPerRun(100, func() { c.Matches(checker, sb) }); allocs != 0 {
		t.Errorf("a cached verdict allocated %v times", allocs)
	}
	// Verdict says when it stored an entry: only a miss does.
	if _, stored := c.Verdict(checker, sb); stored {
		t.Error("a cached verdict reported as stored")
	}
	sb.Generation = 4
	if _, stored := c.Verdict(checker, sb); !stored {
		t.Error("a verdict computed for a new generation reported as not stored")
	}
}

// Both caches drop the entries of Sandboxes gone from the informer.
func TestMemberProvenanceAndMatchCacheSweep(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python", UID: "tmpl-uid", ResourceVersion: "1"}}
	checker := NewStalenessChecker(tmpl, SecureDefaults{})
	prov, matches := NewMemberProvenance(), NewMatchCache()
	var kept, gone *agentsv1beta1.Sandbox
	for _, name := range []string{"kept", "gone"} {
		sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), Generation: 1}}
		prov.Created("pool", sb)
		matches.Matches(checker, sb)
		if name == "kept" {
			kept = sb
		} else {
			gone = sb
		}
	}
	live := func(uid types.UID) bool { return uid == kept.UID }
	for range 2 {
		prov.Sweep(live)
		matches.Sweep(live)
	}
	if prov.Len() != 1 || !prov.CreatedBy("pool", kept) || prov.CreatedBy("pool", gone) {
		t.Errorf("provenance after the sweeps: %d records, kept %v, gone %v; want only the live one",
			prov.Len(), prov.CreatedBy("pool", kept), prov.CreatedBy("pool", gone))
	}
	if matches.Len() != 1 {
		t.Errorf("match cache holds %d verdicts, want the live one", matches.Len())
	}
}
