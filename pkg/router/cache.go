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
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// sandboxGroupKind is compared without the version: Pods written by older
// controllers still reference agents.x-k8s.io/v1alpha1.
var sandboxGroupKind = schema.GroupKind{Group: agentsv1beta1.GroupName, Kind: agentsv1beta1.SandboxKind}

// CacheEntry is what the router knows about one routable sandbox.
type CacheEntry struct {
	// SandboxUID is the UID of the owning Sandbox, the primary key.
	SandboxUID types.UID
	// PodUID identifies the Pod the entry came from, so a stale Pod's
	// delete never evicts its successor.
	PodUID types.UID
	// Namespace and Name are the owning Sandbox's; Name is what
	// X-Sandbox-ID must carry.
	Namespace, Name string
	// PodIP is status.podIP, the address the router dials.
	PodIP netip.Addr
	// PodIPs are all of status.podIPs (dual stack); a hint may name any.
	PodIPs []netip.Addr
	// NameIndexed is false for unadopted warm-pool Pods: reachable by UID
	// only, so nobody reaches an unclaimed pool Pod by guessing its name.
	NameIndexed bool
}

// HasIP reports whether ip is one of the Pod's addresses.
func (e CacheEntry) HasIP(ip netip.Addr) bool {
	return slices.Contains(e.PodIPs, ip.Unmap())
}

type nameKey struct{ namespace, name string }

// PodCache maps Sandboxes to the IPs of their ready Pods, fed by a Pod
// informer. Lookups never call the API server.
//
// Invariants, under mu: byUID holds at most one entry per Sandbox (the last
// Pod written wins); byName[k] names a UID whose entry is name-indexed;
// byPod[pod] names the Sandbox UID whose entry that Pod wrote last.
type PodCache struct {
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced
	logger   klog.Logger

	mu         sync.RWMutex
	byUID      map[types.UID]*CacheEntry
	byName     map[nameKey]types.UID
	byPod      map[types.UID]types.UID
	namespaces map[string]int
}

// PodCacheOptions configures NewPodCache.
type PodCacheOptions struct {
	// Namespace limits the cache to one namespace; empty watches all.
	Namespace string
	// Resync is the informer resync period; 0 means 10 minutes.
	Resync time.Duration
	// Logger receives the cache's logs; the zero Logger means klog.Background().
	Logger klog.Logger
}

// PodSelector is the server-side filter of the cache's LIST and WATCH:
// only Pods carrying the sandbox-name-hash label and an IP, so memory and
// watch traffic track sandboxes rather than the size of the cluster.
func PodSelector() (labelSelector, fieldSelector string) {
	return agentsv1beta1.SandboxNameHashLabel, fields.OneTermNotEqualSelector("status.podIP", "").String()
}

// NewPodCache builds the cache and its informer factory; nothing runs
// until Start.
func NewPodCache(client kubernetes.Interface, o PodCacheOptions) (*PodCache, kubeinformers.SharedInformerFactory, error) {
	if client == nil {
		return nil, nil, fmt.Errorf("pod cache: a Kubernetes client is required")
	}
	if o.Resync == 0 {
		o.Resync = 10 * time.Minute
	}
	if o.Logger.GetSink() == nil {
		o.Logger = klog.Background()
	}
	labelSel, fieldSel := PodSelector()
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(client, o.Resync,
		kubeinformers.WithNamespace(o.Namespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = labelSel
			lo.FieldSelector = fieldSel
		}))
	informer := factory.Core().V1().Pods().Informer()
	if err := informer.SetTransform(slimPod); err != nil {
		return nil, nil, fmt.Errorf("pod cache: setting transform: %w", err)
	}
	c := &PodCache{
		informer:   informer,
		logger:     o.Logger.WithName("pod-cache"),
		byUID:      map[types.UID]*CacheEntry{},
		byName:     map[nameKey]types.UID{},
		byPod:      map[types.UID]types.UID{},
		namespaces: map[string]int{},
	}
	reg, err := informer.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.upsert(obj) },
		UpdateFunc: func(_, obj any) { c.upsert(obj) },
		DeleteFunc: c.onDelete,
	}, cache.HandlerOptions{Logger: &c.logger})
	if err != nil {
		return nil, nil, fmt.Errorf("pod cache: adding event handler: %w", err)
	}
	// The registration's HasSynced is stricter than the informer's: it also
	// waits until this handler has seen the initial list.
	c.synced = reg.HasSynced
	return c, factory, nil
}

// HasSynced reports whether the initial LIST has been applied.
func (c *PodCache) HasSynced() bool { return c.synced() }

// WaitForSync blocks until the cache has synced or ctx ends.
func (c *PodCache) WaitForSync(ctx context.Context) bool {
	return cache.WaitForNamedCacheSyncWithContext(ctx, c.synced)
}

// ByUID returns the entry of the Sandbox with this UID, name-indexed or not.
func (c *PodCache) ByUID(uid types.UID) (CacheEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byUID[uid]
	if !ok {
		return CacheEntry{}, false
	}
	return *e, true
}

// ByName returns the entry of the named Sandbox; unadopted warm-pool Pods
// are never found this way.
func (c *PodCache) ByName(namespace, name string) (CacheEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	uid, ok := c.byName[nameKey{namespace, name}]
	if !ok {
		return CacheEntry{}, false
	}
	e, ok := c.byUID[uid]
	if !ok {
		return CacheEntry{}, false
	}
	return *e, true
}

// HasNamespace reports whether any cached sandbox lives in namespace. The
// metrics use it to keep attacker-chosen namespaces out of label values.
func (c *PodCache) HasNamespace(namespace string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.namespaces[namespace] > 0
}

// Len is the number of cached sandboxes.
func (c *PodCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byUID)
}

// Invalidate evicts the Sandbox's entry if it still holds ip, after a dial
// to ip failed in a way that says the host is gone. The informer would
// evict it too, but only after the kubelet and API server noticed.
func (c *PodCache) Invalidate(uid types.UID, ip netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byUID[uid]
	if !ok || e.PodIP != ip {
		return false
	}
	c.removeLocked(e)
	return true
}

func (c *PodCache) upsert(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	e := entryFor(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetPodLocked(pod.UID)
	if e == nil {
		return
	}
	if old, ok := c.byUID[e.SandboxUID]; ok {
		c.removeLocked(old)
	}
	c.byUID[e.SandboxUID] = e
	c.byPod[e.PodUID] = e.SandboxUID
	c.namespaces[e.Namespace]++
	if e.NameIndexed {
		// Last writer wins on a name collision (a Sandbox recreated while
		// its predecessor's Pod lingers); removal is guarded by UID.
		c.byName[nameKey{e.Namespace, e.Name}] = e.SandboxUID
	}
	c.logger.V(5).Info("Cached sandbox pod", "sandbox", klog.KRef(e.Namespace, e.Name), "podIP", e.PodIP, "nameIndexed", e.NameIndexed)
}

func (c *PodCache) onDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetPodLocked(pod.UID)
}

// forgetPodLocked removes whatever this Pod contributed, and only that: if
// another Pod has since written the Sandbox's entry, it stays.
func (c *PodCache) forgetPodLocked(podUID types.UID) {
	sandboxUID, ok := c.byPod[podUID]
	if !ok {
		return
	}
	delete(c.byPod, podUID)
	if e, ok := c.byUID[sandboxUID]; ok && e.PodUID == podUID {
		c.removeLocked(e)
	}
}

func (c *PodCache) removeLocked(e *CacheEntry) {
	delete(c.byUID, e.SandboxUID)
	if c.byPod[e.PodUID] == e.SandboxUID {
		delete(c.byPod, e.PodUID)
	}
	k := nameKey{e.Namespace, e.Name}
	if c.byName[k] == e.SandboxUID {
		delete(c.byName, k)
	}
	if c.namespaces[e.Namespace]--; c.namespaces[e.Namespace] <= 0 {
		delete(c.namespaces, e.Namespace)
	}
}

// entryFor applies the cache rules: a controller owner of group
// agents.x-k8s.io and kind Sandbox, the name-hash label, Ready=True, a
// parseable Pod IP, and not terminating (a Pod being deleted must not get
// new requests, whatever its readiness says for the next few seconds).
// It returns nil for a Pod that must not be routable.
func entryFor(pod *corev1.Pod) *CacheEntry {
	if pod.DeletionTimestamp != nil {
		return nil
	}
	if _, ok := pod.Labels[agentsv1beta1.SandboxNameHashLabel]; !ok {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != sandboxGroupKind.Kind || ref.UID == "" || ref.Name == "" {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != sandboxGroupKind.Group {
		return nil
	}
	if !podReady(pod) {
		return nil
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return nil
	}
	ip = ip.Unmap()
	ips := []netip.Addr{ip}
	for _, p := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(p.IP); err == nil && !slices.Contains(ips, a.Unmap()) {
			ips = append(ips, a.Unmap())
		}
	}
	_, warm := pod.Labels[agentsv1beta1.WarmPoolSandboxLabel]
	return &CacheEntry{
		SandboxUID: ref.UID,
		PodUID:     pod.UID,
		Namespace:  pod.Namespace,
		// The owner's name, not the Pod's: authorization is decided on the
		// Sandbox name, so routing must resolve that same name. The two are
		// equal except for adopted Pods (agents.x-k8s.io/pod-name).
		Name:        ref.Name,
		PodIP:       ip,
		PodIPs:      ips,
		NameIndexed: !warm,
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// slimPod keeps only what entryFor reads: at thousands of sandboxes the
// full Pod objects (spec, managed fields) would dominate the router's
// memory.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones pass through untouched
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			DeletionTimestamp: pod.DeletionTimestamp,
			OwnerReferences:   pod.OwnerReferences,
		},
		Status: corev1.PodStatus{
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
	for _, k := range []string{agentsv1beta1.SandboxNameHashLabel, agentsv1beta1.WarmPoolSandboxLabel} {
		if v, ok := pod.Labels[k]; ok {
			if slim.Labels == nil {
				slim.Labels = map[string]string{}
			}
			slim.Labels[k] = v
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			slim.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return slim, nil
}

func typesUID(s string) types.UID { return types.UID(s) }
