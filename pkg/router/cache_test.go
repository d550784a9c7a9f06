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

package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	agentsfake "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

type sbOpt func(*agentsv1beta1.Sandbox)

func TestEntryFor(t *testing.T) {
	other := sandboxUID("ns", "other")
	cases := map[string]struct {
		pod        *corev1.Pod
		sbOpts     []sbOpt
		wantCached bool
		wantIndex  bool
	}{
		"ready sandbox pod": {pod: sandboxPod("ns", "a", "127.30.0.1"), wantCached: true, wantIndex: true},
		"v1alpha1 owner":    {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1alpha1", "Sandbox", "a", sandboxUID("ns", "a"))), wantCached: true, wantIndex: true},
		"claimed, pod label not yet gone": {pod: sandboxPod("ns", "a", "127.30.0.1", warm), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) {
			sb.Labels = nil
		}}, wantCached: true, wantIndex: true},
		"warm pool sandbox": {pod: sandboxPod("ns", "a", "127.30.0.1"), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) {
			sb.Labels = map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "x"}
		}}, wantCached: true, wantIndex: false},
		"not ready":                      {pod: sandboxPod("ns", "a", "127.30.0.1", notReady)},
		"no ready condition":             {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.Status.Conditions = nil })},
		"no ip":                          {pod: sandboxPod("ns", "a", "")},
		"garbage ip":                     {pod: sandboxPod("ns", "a", "not-an-ip")},
		"other group":                    {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("evil.example.com/v1", "Sandbox", "a", sandboxUID("ns", "a")))},
		"other kind":                     {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "SandboxClaim", "a", sandboxUID("ns", "a")))},
		"no owner":                       {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.OwnerReferences = nil })},
		"non-controller owner":           {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil })},
		"owner is another sandbox's uid": {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", other))},
		"no name hash label":             {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { delete(p.Labels, agentsv1beta1.SandboxNameHashLabel) })},
		"name hash of another name":      {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.Labels[agentsv1beta1.SandboxNameHashLabel] = agentsv1beta1.NameHash("b") })},
		"terminating":                    {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} })},
		"ip not in sandbox status":       {pod: sandboxPod("ns", "a", "127.30.0.1"), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) { sb.Status.PodIPs = []string{"127.30.0.2"} }}},
		"sandbox status empty":           {pod: sandboxPod("ns", "a", "127.30.0.1"), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) { sb.Status.PodIPs = nil }}},
		"pod of another namespace":       {pod: sandboxPod("ns", "a", "127.30.0.1"), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) { sb.Namespace = "ns2" }}},
		"pod not the tracked one": {pod: sandboxPod("ns", "a", "127.30.0.1"), sbOpts: []sbOpt{func(sb *agentsv1beta1.Sandbox) {
			sb.Annotations = map[string]string{agentsv1beta1.PodNameAnnotation: "adopted"}
		}}},
		"adopted pod by annotation": {
			pod:        sandboxPod("ns", "adopted", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", sandboxUID("ns", "a")), func(p *corev1.Pod) { p.Labels[agentsv1beta1.SandboxNameHashLabel] = agentsv1beta1.NameHash("a") }),
			wantCached: true, wantIndex: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// The Sandbox a working controller reports for the ordinary Pod
			// of ns/a; the cases then break one rule each.
			sb := sandboxFor(sandboxPod("ns", "a", "127.30.0.1"))
			if tc.pod.Name != "a" {
				sb.Annotations = map[string]string{agentsv1beta1.PodNameAnnotation: tc.pod.Name}
			}
			for _, o := range tc.sbOpts {
				o(sb)
			}
			slim, _ := slimPod(tc.pod.DeepCopy())
			slimSb, _ := slimSandbox(sb)
			e := entryFor(slimSb.(*agentsv1beta1.Sandbox), slim.(*corev1.Pod))
			if (e != nil) != tc.wantCached {
				t.Fatalf("entryFor() = %+v, want cached %v", e, tc.wantCached)
			}
			if e != nil && (e.NameIndexed != tc.wantIndex || e.Name != "a" || e.SandboxUID != sb.UID) {
				t.Errorf("entry = %+v, want Sandbox a (%s), NameIndexed %v", e, sb.UID, tc.wantIndex)
			}
		})
	}
}

// bareCache is a cache whose informers never run: tests write the stores
// and call the handlers, as the informers would, in a chosen order.
type bareCache struct {
	*PodCache
	t *testing.T
}

func newBareCache(t *testing.T) bareCache {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	c, err := NewPodCache(k8sfake.NewClientset(), agentsfake.NewSimpleClientset(), PodCacheOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return bareCache{c, t}
}

func (c bareCache) putPod(p *corev1.Pod) {
	slim, _ := slimPod(p.DeepCopy())
	if err := c.pods.GetStore().Update(slim); err != nil {
		c.t.Fatal(err)
	}
	c.onPod(slim)
}

func (c bareCache) deletePod(p *corev1.Pod) {
	slim, _ := slimPod(p.DeepCopy())
	if err := c.pods.GetStore().Delete(slim); err != nil {
		c.t.Fatal(err)
	}
	c.onPod(cache.DeletedFinalStateUnknown{Key: p.Namespace + "/" + p.Name, Obj: slim})
}

func (c bareCache) putSandbox(sb *agentsv1beta1.Sandbox) {
	slim, _ := slimSandbox(sb.DeepCopy())
	if err := c.sandboxes.GetStore().Update(slim); err != nil {
		c.t.Fatal(err)
	}
	c.onSandbox(slim)
}

func (c bareCache) deleteSandbox(sb *agentsv1beta1.Sandbox) {
	slim, _ := slimSandbox(sb.DeepCopy())
	if err := c.sandboxes.GetStore().Delete(slim); err != nil {
		c.t.Fatal(err)
	}
	c.onSandbox(slim)
}

// put stores a Pod and the Sandbox its controller reports.
func (c bareCache) put(p *corev1.Pod) *agentsv1beta1.Sandbox {
	sb := sandboxFor(p)
	c.putPod(p)
	c.putSandbox(sb)
	return sb
}

func lookup(c bareCache, ns, name string) string {
	e, ok := c.ByName(ns, name)
	if !ok {
		return ""
	}
	return e.PodIP.String()
}

func TestPodCacheIndexes(t *testing.T) {
	c := newBareCache(t)
	a := sandboxPod("ns1", "a", "127.30.0.1")
	sbA := c.put(a)
	if got := lookup(c, "ns1", "a"); got != "127.30.0.1" {
		t.Fatalf("ByName(ns1/a) = %q, want 127.30.0.1", got)
	}
	if got := lookup(c, "ns2", "a"); got != "" {
		t.Fatalf("ByName(ns2/a) = %q, want miss: namespaces must not leak", got)
	}
	if e, ok := c.ByUID("ns1", sbA.UID); !ok || e.Name != "a" || e.Namespace != "ns1" {
		t.Fatalf("ByUID = %+v, %v", e, ok)
	}
	if _, ok := c.ByUID("ns2", sbA.UID); ok {
		t.Fatal("ByUID found ns1's Sandbox under ns2")
	}
	if !c.HasNamespace("ns1") || c.HasNamespace("ns2") {
		t.Fatal("HasNamespace wrong")
	}

	// Unadopted warm-pool member: by UID only.
	w := sandboxPod("ns1", "pool-x", "127.30.0.2", warm)
	sbW := c.put(w)
	if got := lookup(c, "ns1", "pool-x"); got != "" {
		t.Fatalf("warm pool pod reachable by name: %q", got)
	}
	if _, ok := c.ByUID("ns1", sbW.UID); !ok {
		t.Fatal("warm pool pod not reachable by UID")
	}
	// A Pod without the label does not make its pool Sandbox reachable.
	unlabelled := w.DeepCopy()
	delete(unlabelled.Labels, agentsv1beta1.WarmPoolSandboxLabel)
	c.putPod(unlabelled)
	if got := lookup(c, "ns1", "pool-x"); got != "" {
		t.Fatalf("pool Sandbox reachable by name once its Pod lost the label: %q", got)
	}
	c.putPod(w)
	// The claim's takeover clears the Sandbox's label: reachable by name
	// at once, while the Pod still carries its copy (the Sandbox
	// controller's metadata patch follows and gates nothing).
	claimed := sbW.DeepCopy()
	claimed.Labels = nil
	c.putSandbox(claimed)
	if got := lookup(c, "ns1", "pool-x"); got != "127.30.0.2" {
		t.Fatalf("claimed Sandbox ByName = %q while its Pod keeps the pool label, want 127.30.0.2", got)
	}

	// Leaving Ready evicts.
	c.putPod(sandboxPod("ns1", "a", "127.30.0.1", notReady))
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("unready pod still cached: %q", got)
	}
	if _, ok := c.ByUID("ns1", sbA.UID); ok {
		t.Fatal("unready pod still cached by UID")
	}
	// An IP change needs both the Pod and the Sandbox's status.
	moved := sandboxPod("ns1", "a", "127.30.0.9")
	c.putPod(moved)
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("ByName = %q before the Sandbox's status lists the new IP", got)
	}
	c.putSandbox(sandboxFor(moved))
	if got := lookup(c, "ns1", "a"); got != "127.30.0.9" {
		t.Fatalf("ByName after IP change = %q", got)
	}
	// The controller clearing status.podIPs evicts.
	cleared := sandboxFor(moved)
	cleared.Status.PodIPs = nil
	c.putSandbox(cleared)
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("ByName with empty status.podIPs = %q", got)
	}
	c.putSandbox(sandboxFor(moved))
	// Pod delete evicts, including through a tombstone.
	c.deletePod(moved)
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("deleted pod still cached: %q", got)
	}
	// Sandbox delete evicts.
	c.deleteSandbox(claimed)
	if _, ok := c.ByUID("ns1", sbW.UID); ok {
		t.Fatal("deleted Sandbox still cached")
	}
	if c.Len() != 0 || c.HasNamespace("ns1") || len(c.byName) != 0 || len(c.byUID) != 0 {
		t.Fatalf("cache not empty: name=%v uid=%v ns=%v", c.byName, c.byUID, c.namespaces)
	}
}

// A Pod forged by someone who may create Pods in the namespace, with a
// controller ownerReference to the victim Sandbox's UID and its name-hash
// label, never takes the victim's route, whatever the event order.
func TestPodCacheForgedPodNeverWins(t *testing.T) {
	c := newBareCache(t)
	genuine := sandboxPod("ns", "victim", "127.30.0.1")
	sb := c.put(genuine)
	forged := sandboxPod("ns", "victim-forged", "127.30.0.66", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "victim", sb.UID),
		func(p *corev1.Pod) { p.Labels[agentsv1beta1.SandboxNameHashLabel] = agentsv1beta1.NameHash("victim") })
	c.putPod(forged)
	c.putPod(genuine)
	c.putPod(forged)
	if got := lookup(c, "ns", "victim"); got != "127.30.0.1" {
		t.Fatalf("ByName = %q, want the real Pod 127.30.0.1", got)
	}
	if e, _ := c.ByUID("ns", sb.UID); e.PodIP.String() != "127.30.0.1" {
		t.Fatalf("ByUID = %+v, want the real Pod", e)
	}
	// The forged Pod's delete leaves the real route alone.
	c.deletePod(forged)
	if got := lookup(c, "ns", "victim"); got != "127.30.0.1" {
		t.Fatalf("ByName after the forged Pod's delete = %q", got)
	}
	// With the real Pod gone and the Sandbox's status cleared, a forged
	// Pod under the tracked name gets nothing either.
	c.deletePod(genuine)
	cleared := sb.DeepCopy()
	cleared.Status.PodIPs = nil
	c.putSandbox(cleared)
	impostor := sandboxPod("ns", "victim", "127.30.0.66", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "victim", sb.UID))
	c.putPod(impostor)
	if got := lookup(c, "ns", "victim"); got != "" {
		t.Fatalf("ByName = %q for a Pod the Sandbox's status does not list", got)
	}
}

// A Pod in another namespace that carries a Sandbox's UID, name and label
// neither evicts nor replaces that Sandbox's entry, and is not routable
// itself.
func TestPodCacheForeignNamespaceUID(t *testing.T) {
	c := newBareCache(t)
	sb := c.put(sandboxPod("team-a", "victim", "127.30.0.1"))
	foreign := sandboxPod("team-b", "victim", "127.30.0.66", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "victim", sb.UID))
	c.putPod(foreign)
	if got := lookup(c, "team-a", "victim"); got != "127.30.0.1" {
		t.Fatalf("team-a/victim = %q, want 127.30.0.1", got)
	}
	if got := lookup(c, "team-b", "victim"); got != "" {
		t.Fatalf("team-b/victim = %q, want a miss", got)
	}
	if _, ok := c.ByUID("team-b", sb.UID); ok {
		t.Fatal("team-a's UID resolves in team-b")
	}
	c.deletePod(foreign)
	if e, ok := c.ByUID("team-a", sb.UID); !ok || e.PodIP.String() != "127.30.0.1" {
		t.Fatalf("team-a's entry after the foreign Pod's delete = %+v, %v", e, ok)
	}
	// Even a Sandbox in team-b with the same name does not touch team-a's
	// entry.
	c.put(sandboxPod("team-b", "victim", "127.30.0.7"))
	if got := lookup(c, "team-a", "victim"); got != "127.30.0.1" {
		t.Fatalf("team-a/victim = %q after team-b's own victim appeared", got)
	}
	if got := lookup(c, "team-b", "victim"); got != "127.30.0.7" {
		t.Fatalf("team-b/victim = %q", got)
	}
}

func TestPodCacheRecreatedSandbox(t *testing.T) {
	c := newBareCache(t)
	old := sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", "old"))
	oldSb := c.put(old)
	// Sandbox ns/a deleted and recreated; the old Pod lingers.
	c.deleteSandbox(oldSb)
	cur := sandboxPod("ns", "a", "127.30.0.2", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", "new"))
	curSb := sandboxFor(cur)
	curSb.Status.PodIPs = nil
	c.putSandbox(curSb)
	if got := lookup(c, "ns", "a"); got != "" {
		t.Fatalf("ByName = %q: the old Sandbox's Pod serves its successor", got)
	}
	c.putPod(cur)
	c.putSandbox(sandboxFor(cur))
	if got := lookup(c, "ns", "a"); got != "127.30.0.2" {
		t.Fatalf("ByName = %q, want 127.30.0.2", got)
	}
	if _, ok := c.ByUID("ns", "old"); ok {
		t.Fatal("old Sandbox still cached by UID")
	}
}

// Recheck re-derives from the stores: it changes nothing while they do
// not, and follows them when the handler has not run yet.
func TestPodCacheRecheck(t *testing.T) {
	c := newBareCache(t)
	p := sandboxPod("ns", "a", "127.30.0.1")
	sb := c.put(p)
	if c.Recheck("ns", "a") {
		t.Fatal("Recheck reported a change with unchanged stores")
	}
	if got := lookup(c, "ns", "a"); got != "127.30.0.1" {
		t.Fatalf("entry gone after Recheck: %q", got)
	}
	// The store already has the Pod unready; its handler has not run.
	unready, _ := slimPod(sandboxPod("ns", "a", "127.30.0.1", notReady))
	if err := c.pods.GetStore().Update(unready); err != nil {
		t.Fatal(err)
	}
	if !c.Recheck("ns", "a") {
		t.Fatal("Recheck missed the store's change")
	}
	if _, ok := c.ByUID("ns", sb.UID); ok {
		t.Fatal("unready Pod still cached after Recheck")
	}
}

func TestPodCacheDualStack(t *testing.T) {
	c := newBareCache(t)
	p := sandboxPod("ns", "a", "127.30.0.1")
	p.Status.PodIPs = []corev1.PodIP{{IP: "127.30.0.1"}, {IP: "fd00::1"}, {IP: "fd00::2"}}
	sb := sandboxFor(p)
	// The status lists only two: the third is not the controller's word.
	sb.Status.PodIPs = []string{"127.30.0.1", "fd00::1"}
	c.putPod(p)
	c.putSandbox(sb)
	e, _ := c.ByName("ns", "a")
	want := []netip.Addr{netip.MustParseAddr("127.30.0.1"), netip.MustParseAddr("fd00::1")}
	if diff := cmp.Diff(want, e.PodIPs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("PodIPs (-want,+got):\n%s", diff)
	}
	if !e.HasIP(netip.MustParseAddr("fd00::1")) || e.HasIP(netip.MustParseAddr("fd00::2")) {
		t.Error("HasIP wrong")
	}
	if !c.SandboxHasIP("ns", "a", netip.MustParseAddr("fd00::1")) || c.SandboxHasIP("ns", "a", netip.MustParseAddr("fd00::2")) || c.SandboxHasIP("ns2", "a", netip.MustParseAddr("fd00::1")) {
		t.Error("SandboxHasIP wrong")
	}
}

func TestSlimSandbox(t *testing.T) {
	sb := sandboxFor(sandboxPod("ns", "a", "127.30.0.1"))
	sb.Labels = map[string]string{"tenant": "x", agentsv1beta1.WarmPoolSandboxLabel: "p"}
	knobs := map[string]string{
		agentsv1beta1.PodNameAnnotation:         "a",
		agentsv1beta1.WakeOnRequestAnnotation:   "true",
		agentsv1beta1.IdleTimeoutAnnotation:     "15m",
		agentsv1beta1.LastActivityAnnotation:    "2026-01-02T03:04:05Z",
		agentsv1beta1.IdleSuspendedAtAnnotation: "2026-01-02T03:20:05Z",
	}
	sb.Annotations = map[string]string{"big": "y", "agents.x-k8s.io/other": "z"}
	for k, v := range knobs {
		sb.Annotations[k] = v
	}
	sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	sb.Spec.PodTemplate.Spec.Containers = []corev1.Container{{Name: "c", Image: "i"}}
	sb.Status.Conditions = []metav1.Condition{{Type: "Ready"}}
	got, _ := slimSandbox(sb)
	want := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Name: "a", Namespace: "ns", UID: sb.UID,
			Labels:      map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "p"},
			Annotations: knobs,
		},
		Spec:   agentsv1beta1.SandboxSpec{OperatingMode: agentsv1beta1.SandboxOperatingModeSuspended},
		Status: agentsv1beta1.SandboxStatus{PodIPs: []string{"127.30.0.1"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slimSandbox (-want,+got):\n%s", diff)
	}
}

// TestPodCacheInformer runs the real informer path on fake clientsets:
// selectors, transforms, handler registration, sync, and events of both
// kinds after the initial lists.
func TestPodCacheInformer(t *testing.T) {
	r, client, agents := newTestRouterObjs(t, nil,
		sandboxPod("ns1", "a", "127.30.0.1"), sandboxFor(sandboxPod("ns1", "a", "127.30.0.1")),
		sandboxPod("ns1", "pool-x", "127.30.0.2", warm), sandboxFor(sandboxPod("ns1", "pool-x", "127.30.0.2", warm)),
		sandboxPod("ns1", "b", "127.30.0.3", notReady), sandboxFor(sandboxPod("ns1", "b", "127.30.0.3")),
		// A Pod without its Sandbox is never routable.
		sandboxPod("ns1", "orphan", "127.30.0.4"),
	)
	c := r.Cache()
	byName := func(ns, name string) string {
		e, ok := c.ByName(ns, name)
		if !ok {
			return ""
		}
		return e.PodIP.String()
	}
	if got := byName("ns1", "a"); got != "127.30.0.1" {
		t.Errorf("ByName(ns1/a) = %q", got)
	}
	if got := byName("ns1", "pool-x"); got != "" {
		t.Errorf("warm pod by name = %q", got)
	}
	if got := byName("ns1", "b"); got != "" {
		t.Errorf("unready pod by name = %q", got)
	}
	if got := byName("ns1", "orphan"); got != "" {
		t.Errorf("pod without a Sandbox by name = %q", got)
	}
	if c.Len() != 2 {
		t.Errorf("Len() = %d, want 2", c.Len())
	}
	lsel, fsel := PodSelector()
	if lsel != agentsv1beta1.SandboxNameHashLabel || fsel != "status.podIP!=" {
		t.Errorf("PodSelector() = %q, %q", lsel, fsel)
	}
	var listed bool
	for _, a := range client.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource().Resource == "pods" {
			listed = true
			res := l.GetListRestrictions()
			if res.Labels.String() != lsel || res.Fields.String() != fsel {
				t.Errorf("pods listed with labels %q fields %q, want %q %q", res.Labels, res.Fields, lsel, fsel)
			}
		}
	}
	if !listed {
		t.Error("no pods LIST recorded")
	}

	// Events after the sync: the orphan's Sandbox appears.
	ctx := t.Context()
	if _, err := agents.AgentsV1beta1().Sandboxes("ns1").Create(ctx, sandboxFor(sandboxPod("ns1", "orphan", "127.30.0.4")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return byName("ns1", "orphan") == "127.30.0.4" })
	// b's Pod turns Ready.
	if _, err := client.CoreV1().Pods("ns1").Update(ctx, sandboxPod("ns1", "b", "127.30.0.3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return byName("ns1", "b") == "127.30.0.3" })
}
