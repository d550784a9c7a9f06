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
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func TestEntryFor(t *testing.T) {
	cases := map[string]struct {
		pod        *corev1.Pod
		wantCached bool
		wantIndex  bool
	}{
		"ready sandbox pod":    {pod: sandboxPod("ns", "a", "127.30.0.1"), wantCached: true, wantIndex: true},
		"v1alpha1 owner":       {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1alpha1", "Sandbox", "a", "u")), wantCached: true, wantIndex: true},
		"warm pool pod":        {pod: sandboxPod("ns", "a", "127.30.0.1", warm), wantCached: true, wantIndex: false},
		"not ready":            {pod: sandboxPod("ns", "a", "127.30.0.1", notReady), wantCached: false},
		"no ready condition":   {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.Status.Conditions = nil }), wantCached: false},
		"no ip":                {pod: sandboxPod("ns", "a", ""), wantCached: false},
		"garbage ip":           {pod: sandboxPod("ns", "a", "not-an-ip"), wantCached: false},
		"other group":          {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("evil.example.com/v1", "Sandbox", "a", "u")), wantCached: false},
		"other kind":           {pod: sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "SandboxClaim", "a", "u")), wantCached: false},
		"no owner":             {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.OwnerReferences = nil }), wantCached: false},
		"non-controller owner": {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }), wantCached: false},
		"no name hash label":   {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { delete(p.Labels, agentsv1beta1.SandboxNameHashLabel) }), wantCached: false},
		"terminating":          {pod: sandboxPod("ns", "a", "127.30.0.1", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }), wantCached: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			slim, _ := slimPod(tc.pod.DeepCopy())
			e := entryFor(slim.(*corev1.Pod))
			if (e != nil) != tc.wantCached {
				t.Fatalf("entryFor() = %+v, want cached %v", e, tc.wantCached)
			}
			if e != nil && e.NameIndexed != tc.wantIndex {
				t.Errorf("NameIndexed = %v, want %v", e.NameIndexed, tc.wantIndex)
			}
		})
	}
}

func newBareCache(t *testing.T) *PodCache {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	return &PodCache{
		logger:     logger,
		byUID:      map[types.UID]*CacheEntry{},
		byName:     map[nameKey]types.UID{},
		byPod:      map[types.UID]types.UID{},
		namespaces: map[string]int{},
		synced:     func() bool { return true },
	}
}

func lookup(c *PodCache, ns, name string) string {
	e, ok := c.ByName(ns, name)
	if !ok {
		return ""
	}
	return e.PodIP.String()
}

func TestPodCacheIndexes(t *testing.T) {
	c := newBareCache(t)
	a := sandboxPod("ns1", "a", "127.30.0.1")
	c.upsert(a)
	if got := lookup(c, "ns1", "a"); got != "127.30.0.1" {
		t.Fatalf("ByName(ns1/a) = %q, want 127.30.0.1", got)
	}
	if got := lookup(c, "ns2", "a"); got != "" {
		t.Fatalf("ByName(ns2/a) = %q, want miss: namespaces must not leak", got)
	}
	if e, ok := c.ByUID(sandboxUID("ns1", "a")); !ok || e.Name != "a" || e.Namespace != "ns1" {
		t.Fatalf("ByUID = %+v, %v", e, ok)
	}
	if !c.HasNamespace("ns1") || c.HasNamespace("ns2") {
		t.Fatal("HasNamespace wrong")
	}

	// Unadopted warm-pool Pod: by UID only.
	w := sandboxPod("ns1", "pool-x", "127.30.0.2", warm)
	c.upsert(w)
	if got := lookup(c, "ns1", "pool-x"); got != "" {
		t.Fatalf("warm pool pod reachable by name: %q", got)
	}
	if _, ok := c.ByUID(sandboxUID("ns1", "pool-x")); !ok {
		t.Fatal("warm pool pod not reachable by UID")
	}
	// Adoption removes the label: now name-indexed.
	adopted := w.DeepCopy()
	delete(adopted.Labels, agentsv1beta1.WarmPoolSandboxLabel)
	c.upsert(adopted)
	if got := lookup(c, "ns1", "pool-x"); got != "127.30.0.2" {
		t.Fatalf("adopted pod ByName = %q, want 127.30.0.2", got)
	}

	// Leaving Ready evicts.
	c.upsert(sandboxPod("ns1", "a", "127.30.0.1", notReady))
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("unready pod still cached: %q", got)
	}
	if _, ok := c.ByUID(sandboxUID("ns1", "a")); ok {
		t.Fatal("unready pod still cached by UID")
	}
	// IP change follows the Pod.
	c.upsert(sandboxPod("ns1", "a", "127.30.0.9"))
	if got := lookup(c, "ns1", "a"); got != "127.30.0.9" {
		t.Fatalf("ByName after IP change = %q", got)
	}
	// Delete evicts, including through a tombstone.
	c.onDelete(cache.DeletedFinalStateUnknown{Key: "ns1/a", Obj: sandboxPod("ns1", "a", "127.30.0.9")})
	if got := lookup(c, "ns1", "a"); got != "" {
		t.Fatalf("deleted pod still cached: %q", got)
	}
	c.onDelete(adopted)
	c.onDelete(w)
	if c.Len() != 0 || c.HasNamespace("ns1") || len(c.byName) != 0 || len(c.byPod) != 0 {
		t.Fatalf("cache not empty: uid=%v name=%v pod=%v ns=%v", c.byUID, c.byName, c.byPod, c.namespaces)
	}
}

func TestPodCacheNameCollision(t *testing.T) {
	c := newBareCache(t)
	// Sandbox ns/a recreated: the old Pod (old Sandbox UID) lingers while
	// the new one becomes ready. Last writer wins...
	old := sandboxPod("ns", "a", "127.30.0.1", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", "old"))
	old.UID = "pod-old"
	cur := sandboxPod("ns", "a", "127.30.0.2", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", "new"))
	cur.UID = "pod-new"
	c.upsert(old)
	c.upsert(cur)
	if got := lookup(c, "ns", "a"); got != "127.30.0.2" {
		t.Fatalf("ByName = %q, want the last writer 127.30.0.2", got)
	}
	// ...and the old Pod's delete does not remove the new name key.
	c.onDelete(old)
	if got := lookup(c, "ns", "a"); got != "127.30.0.2" {
		t.Fatalf("ByName after stale delete = %q, want 127.30.0.2", got)
	}
	if _, ok := c.ByUID("old"); ok {
		t.Fatal("old sandbox still cached by UID")
	}

	// Two Pods of one Sandbox: the later write owns the entry and the
	// earlier Pod's delete leaves it alone.
	p2 := sandboxPod("ns", "a", "127.30.0.3", ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", "a", "new"))
	p2.UID = "pod-new-2"
	c.upsert(p2)
	c.onDelete(cur)
	if got := lookup(c, "ns", "a"); got != "127.30.0.3" {
		t.Fatalf("ByName = %q, want 127.30.0.3", got)
	}
}

func TestPodCacheInvalidate(t *testing.T) {
	c := newBareCache(t)
	c.upsert(sandboxPod("ns", "a", "127.30.0.1"))
	uid := sandboxUID("ns", "a")
	if c.Invalidate(uid, netip.MustParseAddr("127.30.0.2")) {
		t.Fatal("Invalidate with a different IP evicted the entry")
	}
	if !c.Invalidate(uid, netip.MustParseAddr("127.30.0.1")) {
		t.Fatal("Invalidate did not evict")
	}
	if got := lookup(c, "ns", "a"); got != "" {
		t.Fatalf("invalidated entry still cached: %q", got)
	}
	// The next informer event brings it back.
	c.upsert(sandboxPod("ns", "a", "127.30.0.1"))
	if got := lookup(c, "ns", "a"); got != "127.30.0.1" {
		t.Fatalf("ByName after re-add = %q", got)
	}
}

func TestPodCacheDualStack(t *testing.T) {
	c := newBareCache(t)
	p := sandboxPod("ns", "a", "127.30.0.1")
	p.Status.PodIPs = []corev1.PodIP{{IP: "127.30.0.1"}, {IP: "fd00::1"}}
	c.upsert(p)
	e, _ := c.ByName("ns", "a")
	want := []netip.Addr{netip.MustParseAddr("127.30.0.1"), netip.MustParseAddr("fd00::1")}
	if diff := cmp.Diff(want, e.PodIPs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("PodIPs (-want,+got):\n%s", diff)
	}
	if !e.HasIP(netip.MustParseAddr("fd00::1")) || e.HasIP(netip.MustParseAddr("fd00::2")) {
		t.Error("HasIP wrong")
	}
}

// TestPodCacheInformer runs the real informer path on a fake clientset:
// selectors, transform, handler registration and sync.
func TestPodCacheInformer(t *testing.T) {
	r, client := newTestRouter(t, nil,
		sandboxPod("ns1", "a", "127.30.0.1"),
		sandboxPod("ns1", "pool-x", "127.30.0.2", warm),
		sandboxPod("ns1", "b", "127.30.0.3", notReady),
	)
	c := r.Cache()
	if got := lookup(c, "ns1", "a"); got != "127.30.0.1" {
		t.Errorf("ByName(ns1/a) = %q", got)
	}
	if got := lookup(c, "ns1", "pool-x"); got != "" {
		t.Errorf("warm pod by name = %q", got)
	}
	if got := lookup(c, "ns1", "b"); got != "" {
		t.Errorf("unready pod by name = %q", got)
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
}
