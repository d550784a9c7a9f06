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

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// sandboxGroupKind is compared without the version: Pods written by older
// controllers still reference agents.x-k8s.io/v1alpha1.
var sandboxGroupKind = schema.GroupKind{Group: agentsv1beta1.GroupName, Kind: agentsv1beta1.SandboxKind}

// trackedPodIndex indexes Sandboxes by namespace/<name of the Pod they
// track>, so a Pod event finds the Sandboxes it may serve without believing
// anything the Pod says about its owner.
const trackedPodIndex = "trackedPod"

// CacheEntry is what the router knows about one routable sandbox.
type CacheEntry struct {
	// SandboxUID is the UID of the Sandbox.
	SandboxUID types.UID
	// PodUID identifies the Pod the entry came from.
	PodUID types.UID
	// Namespace and Name are the Sandbox's; Name is what X-Sandbox-ID must
	// carry.
	Namespace, Name string
	// PodIP is the Pod's status.podIP, the address the router dials.
	PodIP netip.Addr
	// PodIPs are the Pod's addresses that the Sandbox's status also lists
	// (dual stack); a hint may name any.
	PodIPs []netip.Addr
	// NameIndexed is false for unadopted warm-pool members: reachable by
	// UID only, so nobody reaches an unclaimed pool Pod by guessing its name.
	NameIndexed bool
	// EnvPort and EnvHeader come from the Sandbox's env annotation (a warm
	// claim's variables, docs/design/warm-env.md): requests to EnvPort
	// carry EnvHeader as X-Sandbox-Env, precomputed so a request pays one
	// header set. Empty when the Sandbox has no (valid) annotation.
	EnvPort   int
	EnvHeader string
}

// HasIP reports whether ip is one of the Pod's addresses.
func (e CacheEntry) HasIP(ip netip.Addr) bool {
	return slices.Contains(e.PodIPs, ip.Unmap())
}

func (e *CacheEntry) equal(o *CacheEntry) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.SandboxUID == o.SandboxUID && e.PodUID == o.PodUID && e.Namespace == o.Namespace &&
		e.Name == o.Name && e.PodIP == o.PodIP && slices.Equal(e.PodIPs, o.PodIPs) && e.NameIndexed == o.NameIndexed &&
		e.EnvPort == o.EnvPort && e.EnvHeader == o.EnvHeader
}

type nameKey struct{ namespace, name string }

// uidKey scopes a Sandbox UID to its namespace: whatever a caller or a Pod
// claims, a UID never reaches across namespaces.
type uidKey struct {
	namespace string
	uid       types.UID
}

// PodCache resolves Sandboxes to the IPs of their Pods from two informers,
// Sandboxes and Pods. Lookups never call the API server.
//
// Routing trust comes from the Sandbox: its name, UID, pod-name annotation
// and status.podIPs (written by the Sandbox controller through the status
// subresource). A Pod only supplies the address, and only when it is the Pod
// that Sandbox tracks, controlled by that Sandbox's UID, labelled with its
// name hash, Ready, not terminating, with an IP the Sandbox's status lists.
// A Pod's ownerReferences and labels are never enough on their own: anyone
// who may create Pods in a namespace writes them.
//
// Entries are derived, never edited: every Pod or Sandbox event recomputes
// the entries of the Sandboxes concerned from the informers' current
// stores. Invariants, under mu: byName holds one entry per Sandbox in the
// store that resolves (name-indexed or not); byUID[k] points to an entry of
// byName with that namespace and UID.
type PodCache struct {
	pods       cache.SharedIndexInformer
	sandboxes  cache.SharedIndexInformer
	podSynced  cache.InformerSynced
	sbSynced   cache.InformerSynced
	kubeFac    kubeinformers.SharedInformerFactory
	agentsFac  agentsinformers.SharedInformerFactory
	logger     klog.Logger
	mu         sync.RWMutex
	byName     map[nameKey]*CacheEntry
	byUID      map[uidKey]*CacheEntry
	namespaces map[string]int
	// waiters are the requests held for a Sandbox to become routable
	// (wake.go), by Sandbox; under mu. setLocked closes and removes a
	// key's waiter at every change of its entry.
	waiters map[nameKey]*routeWaiter
	// observe, when set before Start, is told every Sandbox's state after
	// each recompute, under mu: the activity tracker follows the opted-in
	// routable Sandboxes this way.
	observe func(k nameKey, sb *agentsv1beta1.Sandbox, routable bool)
}

// routeWaiter is closed when its Sandbox's entry changes; n counts the
// requests holding it, so the last one to give up removes it.
type routeWaiter struct {
	ch chan struct{}
	n  int
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

// PodSelector is the server-side filter of the cache's Pod LIST and WATCH:
// only Pods carrying the sandbox-name-hash label and an IP, so memory and
// watch traffic track sandboxes rather than the size of the cluster.
func PodSelector() (labelSelector, fieldSelector string) {
	return agentsv1beta1.SandboxNameHashLabel, fields.OneTermNotEqualSelector("status.podIP", "").String()
}

// NewPodCache builds the cache and its informers; nothing runs until Start.
func NewPodCache(client kubernetes.Interface, agents versioned.Interface, o PodCacheOptions) (*PodCache, error) {
	if client == nil || agents == nil {
		return nil, fmt.Errorf("pod cache: a Kubernetes client and an agent-sandbox client are required")
	}
	if o.Resync == 0 {
		o.Resync = 10 * time.Minute
	}
	if o.Logger.GetSink() == nil {
		o.Logger = klog.Background()
	}
	labelSel, fieldSel := PodSelector()
	c := &PodCache{
		logger:     o.Logger.WithName("pod-cache"),
		byName:     map[nameKey]*CacheEntry{},
		byUID:      map[uidKey]*CacheEntry{},
		namespaces: map[string]int{},
		waiters:    map[nameKey]*routeWaiter{},
	}
	c.kubeFac = kubeinformers.NewSharedInformerFactoryWithOptions(client, o.Resync,
		kubeinformers.WithNamespace(o.Namespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = labelSel
			lo.FieldSelector = fieldSel
		}))
	c.agentsFac = agentsinformers.NewSharedInformerFactoryWithOptions(agents, o.Resync,
		agentsinformers.WithNamespace(o.Namespace))
	c.pods = c.kubeFac.Core().V1().Pods().Informer()
	c.sandboxes = c.agentsFac.Agents().V1beta1().Sandboxes().Informer()
	if err := c.pods.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("pod cache: setting pod transform: %w", err)
	}
	if err := c.sandboxes.SetTransform(slimSandbox); err != nil {
		return nil, fmt.Errorf("pod cache: setting sandbox transform: %w", err)
	}
	if err := c.sandboxes.AddIndexers(cache.Indexers{trackedPodIndex: indexTrackedPod}); err != nil {
		return nil, fmt.Errorf("pod cache: adding sandbox index: %w", err)
	}
	podReg, err := c.pods.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onPod,
		UpdateFunc: func(_, obj any) { c.onPod(obj) },
		DeleteFunc: c.onPod,
	}, cache.HandlerOptions{Logger: &c.logger})
	if err != nil {
		return nil, fmt.Errorf("pod cache: adding pod handler: %w", err)
	}
	sbReg, err := c.sandboxes.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onSandbox,
		UpdateFunc: func(_, obj any) { c.onSandbox(obj) },
		DeleteFunc: c.onSandbox,
	}, cache.HandlerOptions{Logger: &c.logger})
	if err != nil {
		return nil, fmt.Errorf("pod cache: adding sandbox handler: %w", err)
	}
	// The registrations' HasSynced are stricter than the informers': they
	// also wait until the handlers have seen the initial lists.
	c.podSynced, c.sbSynced = podReg.HasSynced, sbReg.HasSynced
	return c, nil
}

// Start starts both informers; they stop when stop is closed.
func (c *PodCache) Start(stop <-chan struct{}) {
	c.kubeFac.Start(stop)
	c.agentsFac.Start(stop)
}

// Shutdown waits for the informers' goroutines once stop was closed.
func (c *PodCache) Shutdown() {
	c.kubeFac.Shutdown()
	c.agentsFac.Shutdown()
}

// HasSynced reports whether both initial LISTs have been applied.
func (c *PodCache) HasSynced() bool { return c.podSynced() && c.sbSynced() }

// WaitForSync blocks until the cache has synced or ctx ends.
func (c *PodCache) WaitForSync(ctx context.Context) bool {
	return cache.WaitForNamedCacheSyncWithContext(ctx, c.podSynced, c.sbSynced)
}

// ByUID returns the entry of the Sandbox with this UID in namespace,
// name-indexed or not.
func (c *PodCache) ByUID(namespace string, uid types.UID) (CacheEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byUID[uidKey{namespace, uid}]
	if !ok {
		return CacheEntry{}, false
	}
	return *e, true
}

// ByName returns the entry of the named Sandbox; unadopted warm-pool members
// are never found this way.
func (c *PodCache) ByName(namespace, name string) (CacheEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byName[nameKey{namespace, name}]
	if !ok || !e.NameIndexed {
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
	return len(c.byName)
}

// Recheck re-derives the entry of the Sandbox namespace/name from the
// informers' stores and reports whether it changed. The router calls it
// after a dial failure that looks like a dead host: the stores are updated
// before event handlers run, so this may pick up a change a moment early.
// It never evicts on its own: a client's request, whatever port it names,
// must not change routing state.
func (c *PodCache) Recheck(namespace, name string) bool {
	return c.recompute(namespace + "/" + name)
}

// SandboxHasIP reports whether the Sandbox namespace/name lists ip in its
// status.podIPs. It checks addresses the router did not get from the cache
// (the DNS fallback), so only the Sandbox's status counts, not a Pod.
func (c *PodCache) SandboxHasIP(namespace, name string, ip netip.Addr) bool {
	obj, exists, err := c.sandboxes.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return false
	}
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	return ok && slices.Contains(statusIPs(sb), ip.Unmap())
}

// WakeInfo is what the wake path knows of a Sandbox from the informer's
// store, routable or not.
type WakeInfo struct {
	UID types.UID
	// Generation is that of the cached object: a spec change (a suspend,
	// a resume) moves it, the controller's status writes do not.
	Generation int64
	// Suspended is spec.operatingMode == Suspended.
	Suspended bool
	// OptedIn is the wake-on-request annotation set to "true".
	OptedIn bool
	// IdleSuspended is whether the idle-suspended-at annotation is set,
	// which the resume patch removes.
	IdleSuspended bool
}

// WakeInfo returns the wake state of the Sandbox namespace/name, or false
// when the store has none or it is being deleted.
func (c *PodCache) WakeInfo(namespace, name string) (WakeInfo, bool) {
	obj, exists, err := c.sandboxes.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return WakeInfo{}, false
	}
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	if !ok || sb.DeletionTimestamp != nil {
		return WakeInfo{}, false
	}
	_, idle := sb.Annotations[agentsv1beta1.IdleSuspendedAtAnnotation]
	return WakeInfo{
		UID:           sb.UID,
		Generation:    sb.Generation,
		Suspended:     sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended,
		OptedIn:       sb.Annotations[agentsv1beta1.WakeOnRequestAnnotation] == agentsv1beta1.WakeOnRequestEnabled,
		IdleSuspended: idle,
	}, true
}

// changed returns a channel closed at the next change of the entry of the
// Sandbox namespace/name (it becomes routable, changes, or goes), and a
// func that must be called once the caller stops waiting. Taking the
// channel before looking the entry up closes the race with an event in
// between.
func (c *PodCache) changed(namespace, name string) (<-chan struct{}, func()) {
	k := nameKey{namespace, name}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[k]
	if w == nil {
		w = &routeWaiter{ch: make(chan struct{})}
		c.waiters[k] = w
	}
	w.n++
	return w.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		w.n--
		if w.n == 0 && c.waiters[k] == w {
			delete(c.waiters, k)
		}
	}
}

func (c *PodCache) onSandbox(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.recompute(key)
}

func (c *PodCache) onPod(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	// Only the Sandboxes that track a Pod of this name are concerned; the
	// Pod's own ownerReferences are not consulted.
	objs, err := c.sandboxes.GetIndexer().ByIndex(trackedPodIndex, key)
	if err != nil {
		return
	}
	for _, o := range objs {
		if sbKey, err := cache.MetaNamespaceKeyFunc(o); err == nil {
			c.recompute(sbKey)
		}
	}
}

// recompute sets the Sandbox key's entry to what the stores say now. The
// stores are read under mu, so of two racing recomputes the later one
// also read the later state and its result stands.
func (c *PodCache) recompute(key string) bool {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		e  *CacheEntry
		sb *agentsv1beta1.Sandbox
	)
	obj, exists, err := c.sandboxes.GetStore().GetByKey(key)
	if w := c.waiters[nameKey{ns, name}]; w != nil && !exists {
		// Gone: requests held for it find that out now, not at their
		// deadline.
		close(w.ch)
		delete(c.waiters, nameKey{ns, name})
	}
	if err == nil && exists {
		sb, _ = obj.(*agentsv1beta1.Sandbox)
		if sb != nil {
			if pobj, exists, err := c.pods.GetStore().GetByKey(ns + "/" + trackedPodName(sb)); err == nil && exists {
				if pod, ok := pobj.(*corev1.Pod); ok {
					e = entryFor(sb, pod)
				}
			}
		}
	}
	changed := c.setLocked(nameKey{ns, name}, e)
	if c.observe != nil {
		c.observe(nameKey{ns, name}, sb, e != nil)
	}
	return changed
}

// setLocked replaces the entry of k with e (nil removes it) and reports
// whether anything changed.
func (c *PodCache) setLocked(k nameKey, e *CacheEntry) bool {
	old := c.byName[k]
	if old.equal(e) {
		return false
	}
	if w := c.waiters[k]; w != nil {
		close(w.ch)
		delete(c.waiters, k)
	}
	if old != nil {
		delete(c.byName, k)
		if uk := (uidKey{old.Namespace, old.SandboxUID}); c.byUID[uk] == old {
			delete(c.byUID, uk)
		}
		c.namespaces[old.Namespace]--
		if c.namespaces[old.Namespace] <= 0 {
			delete(c.namespaces, old.Namespace)
		}
	}
	if e != nil {
		c.byName[k] = e
		c.byUID[uidKey{e.Namespace, e.SandboxUID}] = e
		c.namespaces[e.Namespace]++
		c.logger.V(5).Info("Cached sandbox", "sandbox", klog.KRef(e.Namespace, e.Name), "podIP", e.PodIP, "nameIndexed", e.NameIndexed)
	} else {
		c.logger.V(5).Info("Sandbox not routable", "sandbox", klog.KRef(k.namespace, k.name))
	}
	return true
}

// trackedPodName is the Pod the Sandbox controller manages for sb: the
// pod-name annotation when set (an adopted Pod keeps its name), else the
// Sandbox's name.
func trackedPodName(sb *agentsv1beta1.Sandbox) string {
	if n := sb.Annotations[agentsv1beta1.PodNameAnnotation]; n != "" {
		return n
	}
	return sb.Name
}

func indexTrackedPod(obj any) ([]string, error) {
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	if !ok {
		return nil, nil
	}
	return []string{sb.Namespace + "/" + trackedPodName(sb)}, nil
}

// statusIPs parses the Sandbox's status.podIPs, which only the controller
// writes; unparsable values are skipped.
func statusIPs(sb *agentsv1beta1.Sandbox) []netip.Addr {
	ips := make([]netip.Addr, 0, len(sb.Status.PodIPs))
	for _, s := range sb.Status.PodIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, a.Unmap())
		}
	}
	return ips
}

// entryFor applies the routing rules to a Sandbox and the Pod found under
// the name it tracks. The Pod must: live in the Sandbox's namespace under
// that name; have a controller owner of group agents.x-k8s.io, kind
// Sandbox and the Sandbox's UID; carry the name-hash label with the value
// NameHash(sandbox name); be Ready=True and not terminating (a Pod being
// deleted must not get new requests, whatever its readiness says); and
// have a status.podIP that the Sandbox's status.podIPs lists. It returns
// nil when the Sandbox must not be routable.
func entryFor(sb *agentsv1beta1.Sandbox, pod *corev1.Pod) *CacheEntry {
	if pod.DeletionTimestamp != nil || pod.Namespace != sb.Namespace || pod.Name != trackedPodName(sb) {
		return nil
	}
	if sb.UID == "" || pod.Labels[agentsv1beta1.SandboxNameHashLabel] != agentsv1beta1.NameHash(sb.Name) {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != sandboxGroupKind.Kind || ref.UID != sb.UID {
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
	listed := statusIPs(sb)
	if !slices.Contains(listed, ip) {
		return nil
	}
	ips := []netip.Addr{ip}
	for _, p := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(p.IP); err == nil && slices.Contains(listed, a.Unmap()) && !slices.Contains(ips, a.Unmap()) {
			ips = append(ips, a.Unmap())
		}
	}
	// Pool membership is the Sandbox's label, which the claim's takeover
	// removes in the same write that hands it over: the pool counts and
	// claims pick their candidates by that label (the WarmPoolMember
	// index), so what a claim may still take is never reachable by name.
	// The Pod's copy of the label is derived and follows a moment later;
	// waiting for it would put the Pod's metadata patch on the path from
	// a claim's Ready to its first request.
	_, warmSandbox := sb.Labels[agentsv1beta1.WarmPoolSandboxLabel]
	e := &CacheEntry{
		SandboxUID:  sb.UID,
		PodUID:      pod.UID,
		Namespace:   sb.Namespace,
		Name:        sb.Name,
		PodIP:       ip,
		PodIPs:      ips,
		NameIndexed: !warmSandbox,
	}
	if a, ok := sb.Annotations[agentsv1beta1.EnvAnnotation]; ok {
		// An annotation that does not parse gives no header: the runtime
		// would refuse it, and the claim controller never writes one.
		if spec, err := warmenv.Parse(a); err == nil {
			e.EnvPort, e.EnvHeader = int(spec.Port), warmenv.EncodeHeader(spec.Env)
		}
	}
	return e
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
		},
		Status: corev1.PodStatus{
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		slim.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller,
		}}
	}
	slim.Labels = keep(pod.Labels, agentsv1beta1.SandboxNameHashLabel)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			slim.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return slim, nil
}

// slimSandbox keeps only what entryFor, the index and the wake and
// activity paths read: of the spec only operatingMode (pod templates are
// large), no conditions, no managed fields. The wake and idle annotations
// (docs/design/idle.md) are kept so that a suspended Sandbox can be told
// apart from a missing one without an API call.
// The env annotation stays too (at most warmenv.MaxAnnotationBytes,
// typically a few hundred bytes, on claimed Sandboxes only).
func slimSandbox(obj any) (any, error) {
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	if !ok {
		return obj, nil
	}
	return &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Name:              sb.Name,
			Namespace:         sb.Namespace,
			UID:               sb.UID,
			ResourceVersion:   sb.ResourceVersion,
			Generation:        sb.Generation,
			DeletionTimestamp: sb.DeletionTimestamp,
			Labels:            keep(sb.Labels, agentsv1beta1.WarmPoolSandboxLabel),
			Annotations: keep(sb.Annotations, agentsv1beta1.PodNameAnnotation,
				agentsv1beta1.WakeOnRequestAnnotation, agentsv1beta1.IdleTimeoutAnnotation,
				agentsv1beta1.LastActivityAnnotation, agentsv1beta1.IdleSuspendedAtAnnotation,
				agentsv1beta1.EnvAnnotation),
		},
		Spec:   agentsv1beta1.SandboxSpec{OperatingMode: sb.Spec.OperatingMode},
		Status: agentsv1beta1.SandboxStatus{PodIPs: sb.Status.PodIPs},
	}, nil
}

// keep returns the entries of m under keys, or nil when there are none.
func keep(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

func typesUID(s string) types.UID { return types.UID(s) }
