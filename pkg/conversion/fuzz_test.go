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
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// The round-trip tests above draw objects from a seeded generator, whose
// strings come from a small vocabulary. The conversions branch on strings
// (pool names, the bound Sandbox's name and its suffix, policy words, the
// state annotations), so the fuzz targets below let the fuzzer choose
// those strings, on top of a generated object.

// reservedAnnotation reports whether key belongs to conversion: a client
// that writes one of these through v1beta1 overrides what conversion
// keeps, so the round-trip promise does not cover it.
func reservedAnnotation(key string) bool {
	switch key {
	case agentsv1beta1.SandboxStateAnnotation, extv1beta1.SandboxClaimStateAnnotation,
		extv1beta1.SandboxTemplateStateAnnotation, extv1beta1.SandboxWarmPoolStateAnnotation,
		extv1beta1.VolumeClaimTemplatesPolicyAnnotation:
		return true
	}
	return false
}

// text is s as the API server hands it to the webhook: JSON decoding
// replaces invalid UTF-8 with U+FFFD, so no object holds any.
func text(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func addAnnotation(annotations map[string]string, key, value string) map[string]string {
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[key] = value
	return annotations
}

// warmBound reports whether a claim is bound to a Sandbox other than the
// one named after it, i.e. to a warm pool member.
func warmBound(c *extv1beta1.SandboxClaim) bool {
	b := c.Status.SandboxStatus.Name
	return b != "" && b != c.Name
}

// claimPoolIsLossy says when docs/api-migration.md and spec section 11.2
// allow a v1beta1 claim's warmPoolRef to come back different from a trip
// through v1alpha1 without saved state: v1alpha1 has no field for a pool,
// only a template and a policy. A pool named like a policy word (empty,
// "none", "default") is read as that policy; a shadow pool of a claim
// bound warm is read back from the bound Sandbox's name.
func claimPoolIsLossy(c *extv1beta1.SandboxClaim) bool {
	p := extv1alpha1.WarmPoolPolicy(c.Spec.WarmPoolRef.Name)
	if !p.IsSpecificPool() {
		return true
	}
	return strings.HasPrefix(string(p), extv1beta1.ShadowPoolPrefix) && warmBound(c)
}

// FuzzHubRoundTrip: every kind, written through v1beta1, read through
// v1alpha1 and written back unchanged, is what was written, except the
// fields the conversion design documents as having no v1alpha1 form.
func FuzzHubRoundTrip(f *testing.F) {
	f.Add(uint64(0), "pool-a", "pool-a-x7k2p", "example.com/k", "v")
	f.Add(uint64(1), "shadow-pool-python", "claim", "x.io/a", "")
	f.Add(uint64(2), "none", "", "", "")
	f.Add(uint64(3), "pool", "pool-", "a", "{}")
	f.Fuzz(func(t *testing.T, seed uint64, pool, bound, annKey, annValue string) {
		pool, bound, annKey, annValue = text(pool), text(bound), text(annKey), text(annValue)
		if reservedAnnotation(annKey) {
			t.Skip("a client-written conversion annotation")
		}
		g := gen{rand.New(rand.NewPCG(seed, 3))}

		sb := g.sandbox()
		sb.Annotations = addAnnotation(sb.Annotations, annKey, annValue)
		spoke, err := SandboxFromHub(sb)
		if err != nil {
			t.Fatalf("Sandbox to v1alpha1: %v", err)
		}
		back, err := SandboxToHub(spoke)
		if err != nil {
			t.Fatalf("Sandbox back to v1beta1: %v", err)
		}
		want := sb.DeepCopy()
		want.Status.NodeName = "" // no v1alpha1 form
		if diff := cmp.Diff(want, back, hubOpts); diff != "" {
			t.Errorf("Sandbox v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", diff)
		}

		claim := g.claim()
		claim.Spec.WarmPoolRef.Name = pool
		claim.Status.SandboxStatus.Name = bound
		claim.Annotations = addAnnotation(claim.Annotations, annKey, annValue)
		if g.chance() {
			claim.Spec.VolumeClaimTemplates = g.vcts()
		}
		cs, err := SandboxClaimFromHub(claim)
		if err != nil {
			t.Fatalf("SandboxClaim to v1alpha1: %v", err)
		}
		cback, err := SandboxClaimToHub(cs)
		if err != nil {
			t.Fatalf("SandboxClaim back to v1beta1: %v", err)
		}
		wantClaim := claim.DeepCopy()
		wantClaim.Spec.VolumeClaimTemplates = nil // no v1alpha1 form
		if claimPoolIsLossy(claim) {
			wantClaim.Spec.WarmPoolRef = cback.Spec.WarmPoolRef
		}
		if diff := cmp.Diff(wantClaim, cback, hubOpts); diff != "" {
			t.Errorf("SandboxClaim v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", diff)
		}

		tmpl := g.template()
		tmpl.Annotations = addAnnotation(tmpl.Annotations, annKey, annValue)
		ts, err := SandboxTemplateFromHub(tmpl)
		if err != nil {
			t.Fatalf("SandboxTemplate to v1alpha1: %v", err)
		}
		tback, err := SandboxTemplateToHub(ts)
		if err != nil {
			t.Fatalf("SandboxTemplate back to v1beta1: %v", err)
		}
		if diff := cmp.Diff(tmpl, tback, hubOpts); diff != "" {
			t.Errorf("SandboxTemplate v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", diff)
		}

		p := g.pool()
		p.Annotations = addAnnotation(p.Annotations, annKey, annValue)
		if g.chance() {
			p.Spec.Replicas = nil
		}
		ps, err := SandboxWarmPoolFromHub(p)
		if err != nil {
			t.Fatalf("SandboxWarmPool to v1alpha1: %v", err)
		}
		pback, err := SandboxWarmPoolToHub(ps)
		if err != nil {
			t.Fatalf("SandboxWarmPool back to v1beta1: %v", err)
		}
		wantPool := p.DeepCopy()
		wantPool.Status.ObservedGeneration = 0 // no v1alpha1 form
		if wantPool.Spec.Replicas == nil {
			wantPool.Spec.Replicas = ptr.To[int32](1) // what the API server defaults it to
		}
		if diff := cmp.Diff(wantPool, pback, hubOpts); diff != "" {
			t.Errorf("SandboxWarmPool v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", diff)
		}
	})
}

// FuzzSpokeRoundTrip: every kind, written through v1alpha1 and read back
// through v1alpha1, is what was written, whatever its strings: the saved
// state restores what v1beta1 cannot say. And a claim written through
// v1alpha1, then given another pool through v1beta1, then read and
// written back unchanged through v1alpha1, keeps the pool the v1beta1
// client chose, except where the spec's heuristics say otherwise.
func FuzzSpokeRoundTrip(f *testing.F) {
	f.Add(uint64(0), "python", "default", "python-pool-x7k2p", "Overrides", "other")
	f.Add(uint64(1), "python", "none", "claim", "", "python")
	f.Add(uint64(2), "t", "fast", "", "Sometimes", "shadow-pool-fast")
	f.Add(uint64(3), "", "", "-", "Allowed", "")
	f.Fuzz(func(t *testing.T, seed uint64, template, warmPool, bound, policy, pool string) {
		template, warmPool, bound, policy, pool = text(template), text(warmPool), text(bound), text(policy), text(pool)
		g := gen{rand.New(rand.NewPCG(seed, 4))}
		opts := cmp.Options{cmpopts.EquateEmpty()}

		sb := g.spokeSandbox()
		sb.Spec.PodTemplate.ObjectMeta.Labels = addAnnotation(sb.Spec.PodTemplate.ObjectMeta.Labels, template, warmPool)
		hub, err := SandboxToHub(sb)
		if err != nil {
			t.Fatalf("Sandbox to v1beta1: %v", err)
		}
		back, err := SandboxFromHub(hub)
		if err != nil {
			t.Fatalf("Sandbox back to v1alpha1: %v", err)
		}
		if diff := cmp.Diff(sb, back, opts); diff != "" {
			t.Errorf("Sandbox v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", diff)
		}

		claim := g.spokeClaim()
		claim.Spec.TemplateRef.Name = template
		claim.Spec.WarmPool = ptr.To(extv1alpha1.WarmPoolPolicy(warmPool))
		claim.Status.SandboxStatus.Name = bound
		chub, err := SandboxClaimToHub(claim)
		if err != nil {
			t.Fatalf("SandboxClaim to v1beta1: %v", err)
		}
		cback, err := SandboxClaimFromHub(chub)
		if err != nil {
			t.Fatalf("SandboxClaim back to v1alpha1: %v", err)
		}
		if diff := cmp.Diff(claim, cback, opts); diff != "" {
			t.Errorf("SandboxClaim v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", diff)
		}

		chub.Spec.WarmPoolRef.Name = pool // a v1beta1 client's edit
		edited, err := SandboxClaimFromHub(chub)
		if err != nil {
			t.Fatalf("edited SandboxClaim to v1alpha1: %v", err)
		}
		rewritten, err := SandboxClaimToHub(edited)
		if err != nil {
			t.Fatalf("edited SandboxClaim back to v1beta1: %v", err)
		}
		wantHub := chub.DeepCopy()
		if claimPoolIsLossy(chub) || restoresSavedPolicy(claim, chub) {
			wantHub.Spec.WarmPoolRef = rewritten.Spec.WarmPoolRef
		}
		if diff := cmp.Diff(wantHub, rewritten, hubOpts); diff != "" {
			t.Errorf("v1alpha1 write, v1beta1 pool %q, v1alpha1 read and write (-want,+got):\n%s", pool, diff)
		}

		tmpl, err := SandboxTemplateFromHub(g.template())
		if err != nil {
			t.Fatal(err)
		}
		tmpl.Annotations = addAnnotation(tmpl.Annotations, extv1beta1.VolumeClaimTemplatesPolicyAnnotation, policy)
		thub, err := SandboxTemplateToHub(tmpl)
		switch extv1beta1.VolumeClaimTemplatesPolicy(policy) {
		case extv1beta1.VolumeClaimTemplatesPolicyDisallowed, extv1beta1.VolumeClaimTemplatesPolicyAllowed, extv1beta1.VolumeClaimTemplatesPolicyOverrides:
			if err != nil {
				t.Fatalf("SandboxTemplate with policy %q to v1beta1: %v", policy, err)
			}
		default:
			// Spec section 11.3: anything else fails the conversion.
			if err == nil {
				t.Fatalf("SandboxTemplate with policy annotation %q converted; want an error", policy)
			}
			return
		}
		tback, err := SandboxTemplateFromHub(thub)
		if err != nil {
			t.Fatalf("SandboxTemplate back to v1alpha1: %v", err)
		}
		if diff := cmp.Diff(tmpl, tback, opts); diff != "" {
			t.Errorf("SandboxTemplate v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", diff)
		}

		wp, err := SandboxWarmPoolFromHub(g.pool())
		if err != nil {
			t.Fatal(err)
		}
		wp.Spec.TemplateRef.Name = template
		phub, err := SandboxWarmPoolToHub(wp)
		if err != nil {
			t.Fatalf("SandboxWarmPool to v1beta1: %v", err)
		}
		pback, err := SandboxWarmPoolFromHub(phub)
		if err != nil {
			t.Fatalf("SandboxWarmPool back to v1alpha1: %v", err)
		}
		if diff := cmp.Diff(wp, pback, opts); diff != "" {
			t.Errorf("SandboxWarmPool v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", diff)
		}
	})
}

// restoresSavedPolicy: spec section 11.2 treats a v1beta1 pool as
// unchanged, and restores the saved v1alpha1 template and policy (from
// which a write back derives the pool again), when it is the saved
// specific pool or template, its shadow pool, the bound Sandbox's name or
// that name minus its suffix. Where the derivation differs from the pool
// the v1beta1 client set (it chose the shadow pool of a specific pool, or
// the bound Sandbox's name), the v1alpha1 write back replaces its choice.
func restoresSavedPolicy(saved *extv1alpha1.SandboxClaim, hub *extv1beta1.SandboxClaim) bool {
	expected := saved.Spec.TemplateRef.Name
	if saved.Spec.WarmPool != nil && saved.Spec.WarmPool.IsSpecificPool() {
		expected = string(*saved.Spec.WarmPool)
	}
	pool, bound := hub.Spec.WarmPoolRef.Name, hub.Status.SandboxStatus.Name
	return pool == expected || pool == extv1beta1.ShadowPoolPrefix+expected ||
		(bound != "" && (pool == bound || pool == withoutSuffix(bound)))
}
