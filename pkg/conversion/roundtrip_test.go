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
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// gen builds random valid objects from a fixed seed, so a failure names
// the seed that reproduces it.
type gen struct{ r *rand.Rand }

func (g gen) pick(n int) int    { return g.r.IntN(n) }
func (g gen) chance() bool      { return g.r.IntN(2) == 0 }
func (g gen) word() string      { return fmt.Sprintf("w%d", g.r.IntN(1000)) }
func (g gen) name() string      { return fmt.Sprintf("obj-%d", g.r.IntN(1000)) }
func (g gen) time() metav1.Time { return metav1.Unix(1_700_000_000+g.r.Int64N(1_000_000), 0) }

func (g gen) strings() map[string]string {
	if g.chance() {
		return nil
	}
	m := map[string]string{}
	for range 1 + g.pick(3) {
		m["x.io/"+g.word()] = g.word()
	}
	return m
}

func (g gen) meta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: g.name(), Namespace: "ns", UID: "uid-1", ResourceVersion: "42", Generation: int64(1 + g.pick(5)),
		Labels: g.strings(), Annotations: g.strings(), CreationTimestamp: g.time()}
}

func (g gen) podSpec() corev1.PodSpec {
	var ctrs []corev1.Container
	for i := range 1 + g.pick(2) {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: g.word()}
		if g.chance() {
			c.Ports = []corev1.ContainerPort{{ContainerPort: int32(1 + g.pick(60000))}}
		}
		if g.chance() {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprintf("%dm", 1+g.pick(4000)))}
		}
		ctrs = append(ctrs, c)
	}
	return corev1.PodSpec{Containers: ctrs}
}

func (g gen) vcts() []agentsv1beta1.PersistentVolumeClaimTemplate {
	if g.chance() {
		return nil
	}
	var out []agentsv1beta1.PersistentVolumeClaimTemplate
	for range 1 + g.pick(2) {
		out = append(out, agentsv1beta1.PersistentVolumeClaimTemplate{
			EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: g.word(), Labels: g.strings()},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(fmt.Sprintf("%dGi", 1+g.pick(9)))}}},
		})
	}
	return out
}

func (g gen) conditions() []metav1.Condition {
	if g.chance() {
		return nil
	}
	return []metav1.Condition{{Type: "Ready", Status: metav1.ConditionStatus([]string{"True", "False"}[g.pick(2)]),
		Reason: "DependenciesReady", Message: g.word(), LastTransitionTime: g.time(), ObservedGeneration: int64(g.pick(5))}}
}

func (g gen) ips() []string {
	if g.chance() {
		return nil
	}
	return []string{fmt.Sprintf("127.10.0.%d", 1+g.pick(250))}
}

func (g gen) sandbox() *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: g.meta()}
	sb.Spec.PodTemplate = agentsv1beta1.PodTemplate{Spec: g.podSpec(), ObjectMeta: agentsv1beta1.PodMetadata{Labels: g.strings(), Annotations: g.strings()}}
	sb.Spec.VolumeClaimTemplates = g.vcts()
	if g.chance() {
		sb.Spec.Service = ptr.To(g.chance())
	}
	sb.Spec.OperatingMode = []agentsv1beta1.SandboxOperatingMode{"Running", "Suspended"}[g.pick(2)]
	sb.Spec.ShutdownPolicy = ptr.To([]agentsv1beta1.ShutdownPolicy{"Delete", "Retain"}[g.pick(2)])
	if g.chance() {
		t := g.time()
		sb.Spec.ShutdownTime = &t
	}
	sb.Status = agentsv1beta1.SandboxStatus{Conditions: g.conditions(), PodIPs: g.ips()}
	if g.chance() {
		sb.Status.Service, sb.Status.ServiceFQDN = sb.Name, sb.Name+".ns.svc.cluster.local"
		sb.Status.LabelSelector = agentsv1beta1.SandboxSelector(sb.Name)
	}
	return sb
}

func (g gen) spokeSandbox() *agentsv1alpha1.Sandbox {
	out, err := SandboxFromHub(g.sandbox())
	if err != nil {
		panic(err)
	}
	switch g.pick(3) { // every replicas form a v1alpha1 client may write
	case 0:
		out.Spec.Replicas = nil
	case 1:
		out.Spec.Replicas = ptr.To[int32](0)
	}
	out.Status.Replicas = int32(g.pick(2))
	return out
}

func (g gen) claim() *extv1beta1.SandboxClaim {
	c := &extv1beta1.SandboxClaim{ObjectMeta: g.meta()}
	switch g.pick(3) {
	case 0:
		c.Spec.WarmPoolRef.Name = extv1beta1.ShadowPoolPrefix + g.word()
	default:
		c.Spec.WarmPoolRef.Name = "pool-" + g.word()
	}
	if g.chance() {
		c.Spec.Lifecycle = &extv1beta1.Lifecycle{ShutdownPolicy: []extv1beta1.ShutdownPolicy{"Delete", "DeleteForeground", "Retain"}[g.pick(3)]}
		if g.chance() {
			t := g.time()
			c.Spec.Lifecycle.ShutdownTime = &t
		}
		if g.chance() {
			c.Spec.Lifecycle.TTLSecondsAfterFinished = ptr.To(int32(g.pick(100)))
		}
	}
	c.Spec.AdditionalPodMetadata = agentsv1beta1.PodMetadata{Labels: g.strings(), Annotations: g.strings()}
	if g.chance() {
		c.Spec.Env = []extv1beta1.EnvVar{{Name: "A", Value: g.word(), ContainerName: []string{"", "c0"}[g.pick(2)]}}
	}
	c.Status = extv1beta1.SandboxClaimStatus{Conditions: g.conditions()}
	switch g.pick(3) {
	case 0:
		c.Status.SandboxStatus = extv1beta1.SandboxStatus{Name: c.Name, PodIPs: g.ips()}
	case 1:
		c.Status.SandboxStatus = extv1beta1.SandboxStatus{Name: c.Spec.WarmPoolRef.Name + "-abcde", PodIPs: g.ips()}
	}
	return c
}

func (g gen) spokeClaim() *extv1alpha1.SandboxClaim {
	c := &extv1alpha1.SandboxClaim{ObjectMeta: g.meta()}
	c.APIVersion, c.Kind = extSpoke, extv1alpha1.SandboxClaimKind
	c.Spec.TemplateRef.Name = "tmpl-" + g.word()
	switch g.pick(4) {
	case 0:
		c.Spec.WarmPool = ptr.To(extv1alpha1.WarmPoolPolicyNone)
	case 1:
		c.Spec.WarmPool = ptr.To(extv1alpha1.WarmPoolPolicyDefault)
	case 2:
		c.Spec.WarmPool = ptr.To(extv1alpha1.WarmPoolPolicy("pool-" + g.word()))
	}
	if g.chance() {
		c.Spec.Lifecycle = &extv1alpha1.Lifecycle{ShutdownPolicy: "Retain", TTLSecondsAfterFinished: ptr.To(int32(g.pick(100)))}
	}
	c.Spec.AdditionalPodMetadata = agentsv1alpha1.PodMetadata{Labels: g.strings()}
	c.Status = extv1alpha1.SandboxClaimStatus{Conditions: g.conditions()}
	switch g.pick(3) {
	case 0:
		c.Status.SandboxStatus.Name = c.Name
	case 1:
		c.Status.SandboxStatus.Name = "pool-" + g.word() + "-xyz12"
	}
	return c
}

func (g gen) template() *extv1beta1.SandboxTemplate {
	t := &extv1beta1.SandboxTemplate{ObjectMeta: g.meta()}
	t.Spec.PodTemplate = agentsv1beta1.PodTemplate{Spec: g.podSpec(), ObjectMeta: agentsv1beta1.PodMetadata{Labels: g.strings()}}
	t.Spec.VolumeClaimTemplates = g.vcts()
	if g.chance() {
		t.Spec.NetworkPolicy = &extv1beta1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}
	}
	t.Spec.NetworkPolicyManagement = []extv1beta1.NetworkPolicyManagement{"Managed", "Unmanaged"}[g.pick(2)]
	t.Spec.EnvVarsInjectionPolicy = []extv1beta1.EnvVarsInjectionPolicy{"Allowed", "Overrides", "Disallowed"}[g.pick(3)]
	t.Spec.VolumeClaimTemplatesPolicy = []extv1beta1.VolumeClaimTemplatesPolicy{"", "Allowed", "Overrides", "Disallowed"}[g.pick(4)]
	return t
}

func (g gen) pool() *extv1beta1.SandboxWarmPool {
	p := &extv1beta1.SandboxWarmPool{ObjectMeta: g.meta()}
	p.Spec.Replicas = ptr.To(int32(g.pick(50)))
	p.Spec.TemplateRef.Name = g.word()
	if g.chance() {
		p.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{Type: []extv1beta1.SandboxWarmPoolUpdateStrategyType{"Recreate", "OnReplenish"}[g.pick(2)]}
	}
	p.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: int32(g.pick(50)), ReadyReplicas: int32(g.pick(50)), Selector: "x=y", ObservedGeneration: p.Generation}
	return p
}

const seeds = 300

// hubOpts ignores, on a hub -> spoke -> hub trip, what v1alpha1 cannot
// carry (documented as lossy) and the state annotation the trip adds.
var hubOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(metav1.TypeMeta{}, "APIVersion", "Kind"),
	cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "ObjectMeta.Annotations" }, cmp.Comparer(func(a, b map[string]string) bool {
		strip := func(m map[string]string) map[string]string {
			out := map[string]string{}
			for k, v := range m {
				switch k {
				case agentsv1beta1.SandboxStateAnnotation, extv1beta1.SandboxClaimStateAnnotation,
					extv1beta1.SandboxTemplateStateAnnotation, extv1beta1.SandboxWarmPoolStateAnnotation:
				default:
					out[k] = v
				}
			}
			return out
		}
		return cmp.Equal(strip(a), strip(b), cmpopts.EquateEmpty())
	})),
}

func TestHubRoundTrips(t *testing.T) {
	for seed := range uint64(seeds) {
		g := gen{rand.New(rand.NewPCG(seed, 1))}

		sb := g.sandbox()
		spoke, err := SandboxFromHub(sb)
		if err != nil {
			t.Fatal(err)
		}
		back, err := SandboxToHub(spoke)
		if err != nil {
			t.Fatal(err)
		}
		want := sb.DeepCopy()
		want.Status.NodeName = "" // no v1alpha1 form
		if diff := cmp.Diff(want, back, hubOpts); diff != "" {
			t.Fatalf("seed %d: Sandbox v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", seed, diff)
		}

		claim := g.claim()
		cs, err := SandboxClaimFromHub(claim)
		if err != nil {
			t.Fatal(err)
		}
		cback, err := SandboxClaimToHub(cs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(claim, cback, hubOpts); diff != "" {
			t.Fatalf("seed %d: SandboxClaim v1beta1 -> v1alpha1 -> v1beta1 (-want,+got):\n%s", seed, diff)
		}

		tmpl := g.template()
		ts, err := SandboxTemplateFromHub(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		tback, err := SandboxTemplateToHub(ts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tmpl, tback, hubOpts); diff != "" {
			t.Fatalf("seed %d: SandboxTemplate round trip (-want,+got):\n%s", seed, diff)
		}

		pool := g.pool()
		ps, err := SandboxWarmPoolFromHub(pool)
		if err != nil {
			t.Fatal(err)
		}
		pback, err := SandboxWarmPoolToHub(ps)
		if err != nil {
			t.Fatal(err)
		}
		wantPool := pool.DeepCopy()
		wantPool.Status.ObservedGeneration = 0 // no v1alpha1 form
		if diff := cmp.Diff(wantPool, pback, hubOpts); diff != "" {
			t.Fatalf("seed %d: SandboxWarmPool round trip (-want,+got):\n%s", seed, diff)
		}
	}
}

// TestSpokeRoundTrips: what a v1alpha1 client writes, it reads back
// unchanged, thanks to the saved state, also where the versions differ.
func TestSpokeRoundTrips(t *testing.T) {
	spokeOpts := cmp.Options{cmpopts.EquateEmpty()}
	for seed := range uint64(seeds) {
		g := gen{rand.New(rand.NewPCG(seed, 2))}

		sb := g.spokeSandbox()
		hub, err := SandboxToHub(sb)
		if err != nil {
			t.Fatal(err)
		}
		back, err := SandboxFromHub(hub)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sb, back, spokeOpts); diff != "" {
			t.Fatalf("seed %d: Sandbox v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", seed, diff)
		}

		claim := g.spokeClaim()
		chub, err := SandboxClaimToHub(claim)
		if err != nil {
			t.Fatal(err)
		}
		cback, err := SandboxClaimFromHub(chub)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(claim, cback, spokeOpts); diff != "" {
			t.Fatalf("seed %d: SandboxClaim v1alpha1 -> v1beta1 -> v1alpha1 (-want,+got):\n%s", seed, diff)
		}
	}
}

func TestClaimPoolDerivation(t *testing.T) {
	claim := func(policy *extv1alpha1.WarmPoolPolicy, bound string) *extv1alpha1.SandboxClaim {
		c := &extv1alpha1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
		c.Spec.TemplateRef.Name = "python"
		c.Spec.WarmPool = policy
		c.Status.SandboxStatus.Name = bound
		return c
	}
	tests := map[string]struct {
		in   *extv1alpha1.SandboxClaim
		want string
	}{
		"specific pool":       {claim(ptr.To(extv1alpha1.WarmPoolPolicy("fast")), ""), "fast"},
		"warm bound, default": {claim(ptr.To(extv1alpha1.WarmPoolPolicyDefault), "python-pool-x7k2p"), "python-pool"},
		"cold bound":          {claim(nil, "c"), "shadow-pool-python"},
		"none":                {claim(ptr.To(extv1alpha1.WarmPoolPolicyNone), ""), "shadow-pool-python"},
		"unbound default":     {claim(ptr.To(extv1alpha1.WarmPoolPolicyDefault), ""), "shadow-pool-python"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hub, err := SandboxClaimToHub(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if hub.Spec.WarmPoolRef.Name != tc.want {
				t.Errorf("warmPoolRef.name = %q, want %q", hub.Spec.WarmPoolRef.Name, tc.want)
			}
		})
	}
}

func TestTemplatePolicyAnnotationMustBeValid(t *testing.T) {
	in := &extv1alpha1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "t", Annotations: map[string]string{
		extv1beta1.VolumeClaimTemplatesPolicyAnnotation: "Sometimes",
	}}}
	if _, err := SandboxTemplateToHub(in); err == nil {
		t.Fatal("an invalid volumeClaimTemplatesPolicy annotation was accepted")
	}
	in.Annotations[extv1beta1.VolumeClaimTemplatesPolicyAnnotation] = "Overrides"
	hub, err := SandboxTemplateToHub(in)
	if err != nil {
		t.Fatal(err)
	}
	if hub.Spec.VolumeClaimTemplatesPolicy != "Overrides" || hub.Annotations[extv1beta1.VolumeClaimTemplatesPolicyAnnotation] != "" {
		t.Errorf("policy %q, annotations %v: want the field set and the annotation gone", hub.Spec.VolumeClaimTemplatesPolicy, hub.Annotations)
	}
}
