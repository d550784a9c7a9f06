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

package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// writeCounter counts the writes the bench itself sends, so they can be
// subtracted from what the apiserver counted.
type writeCounter struct{ atomic.Int64 }

func (w *writeCounter) inc() { w.Add(1) }

// agentWatch follows the Sandboxes, SandboxClaims and SandboxWarmPools of
// one namespace through informers and feeds every event to a Checker and
// to the fill curve. Times are taken in the handlers, when the event
// reaches the bench: the moment a user's watch would see it.
type agentWatch struct {
	checker *Checker
	pool    string

	mu    sync.Mutex
	curve *Curve
	// statusCurve is the pool's status.readyReplicas over time.
	statusCurve *Curve
	poolStatus  extv1beta1.SandboxWarmPoolStatus
	// statuses are the last status of every pool in the namespace (chaos
	// and soak run several).
	statuses   map[string]extv1beta1.SandboxWarmPoolStatus
	claimReady map[string]time.Time
	claimSB    map[string]string
	// claimReadyRV is the resourceVersion of the claim's first Ready.
	claimReadyRV map[string]string
	// writes logs the versions of claims, Sandboxes and their Pods for
	// the critical path of each claim; nil when the scenario does not
	// measure it (its Pod watch is load of its own).
	writes *writeLog
}

func sandboxObs(sb *agentsv1beta1.Sandbox, deleted bool) SandboxObs {
	o := SandboxObs{
		Name: sb.Name, UID: string(sb.UID), LaunchType: sb.Labels[agentsv1beta1.LaunchTypeLabel],
		Ready:   conditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()),
		Deleted: deleted || sb.DeletionTimestamp != nil, Gone: deleted,
	}
	if ref := metav1.GetControllerOf(sb); ref != nil {
		o.Controller = Owner{Kind: ref.Kind, Name: ref.Name, UID: string(ref.UID)}
	}
	return o
}

func claimObs(cl *extv1beta1.SandboxClaim, deleted bool) ClaimObs {
	return ClaimObs{
		Name: cl.Name, UID: string(cl.UID), Sandbox: cl.Status.SandboxStatus.Name,
		Ready:   conditionTrue(cl.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()),
		Deleted: deleted || cl.DeletionTimestamp != nil, Gone: deleted,
	}
}

func conditionTrue(conds []metav1.Condition, t string) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// tombstone unwraps the final state of a deleted object.
func tombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// watchAgents starts the informers of ns and waits for their first list.
// The returned stop func ends them. logWrites adds a watch of the Pods
// and the write log of the claims' critical paths.
func (e *Env) watchAgents(ctx context.Context, ns, pool string, start time.Time, logWrites bool) (*agentWatch, func(), error) {
	w := &agentWatch{
		checker: NewChecker(start, extv1beta1.SandboxClaimKind, extv1beta1.SandboxWarmPoolKind),
		pool:    pool, curve: NewCurve(start), statusCurve: NewCurve(start),
		claimReady: map[string]time.Time{}, claimSB: map[string]string{}, claimReadyRV: map[string]string{},
		statuses: map[string]extv1beta1.SandboxWarmPoolStatus{},
	}
	if logWrites {
		w.writes = newWriteLog()
	}
	f := informers.NewSharedInformerFactoryWithOptions(e.Agents, 0, informers.WithNamespace(ns))
	onSandbox := func(obj any, deleted bool) {
		sb, ok := tombstone(obj).(*agentsv1beta1.Sandbox)
		if !ok {
			return
		}
		now := time.Now()
		if !deleted {
			w.writes.observe(logSandbox, sb.Name, sb.ResourceVersion)
		}
		w.checker.ObserveSandbox(now, sandboxObs(sb, deleted))
		_, ready := w.checker.PoolStats(pool)
		w.mu.Lock()
		w.curve.Set(now, ready)
		w.mu.Unlock()
	}
	onClaim := func(obj any, deleted bool) {
		cl, ok := tombstone(obj).(*extv1beta1.SandboxClaim)
		if !ok {
			return
		}
		now := time.Now()
		o := claimObs(cl, deleted)
		if !deleted {
			w.writes.observe(logClaim, cl.Name, cl.ResourceVersion)
		}
		w.checker.ObserveClaim(now, o)
		w.mu.Lock()
		defer w.mu.Unlock()
		if o.Ready && !o.Deleted {
			if _, seen := w.claimReady[o.Name]; !seen {
				w.claimReady[o.Name] = now
				w.claimSB[o.Name] = o.Sandbox
				w.claimReadyRV[o.Name] = cl.ResourceVersion
			}
		}
	}
	onPool := func(obj any) {
		p, ok := tombstone(obj).(*extv1beta1.SandboxWarmPool)
		if !ok {
			return
		}
		w.mu.Lock()
		w.statuses[p.Name] = p.Status
		w.mu.Unlock()
		if p.Name != pool {
			return
		}
		now := time.Now()
		w.mu.Lock()
		w.poolStatus = p.Status
		w.statusCurve.Set(now, int(p.Status.ReadyReplicas))
		w.mu.Unlock()
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{f.Agents().V1beta1().Sandboxes().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { onSandbox(o, false) },
			UpdateFunc: func(_, o any) { onSandbox(o, false) },
			DeleteFunc: func(o any) { onSandbox(o, true) },
		}},
		{f.Extensions().V1beta1().SandboxClaims().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { onClaim(o, false) },
			UpdateFunc: func(_, o any) { onClaim(o, false) },
			DeleteFunc: func(o any) { onClaim(o, true) },
		}},
		{f.Extensions().V1beta1().SandboxWarmPools().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    onPool,
			UpdateFunc: func(_, o any) { onPool(o) },
		}},
	}
	var synced []cache.InformerSynced
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, nil, fmt.Errorf("adding watch handler: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	stopMembers, err := watchPoolMembers(ctx, e.Agents, ns, w.checker)
	if err != nil {
		return nil, nil, err
	}
	stopPods := func() {}
	if logWrites {
		if stopPods, err = watchPodVersions(ctx, e.Kube, ns, w.writes); err != nil {
			stopMembers()
			return nil, nil, err
		}
	}
	stopInformers, err := startWatches(ctx, f, "watches of namespace "+ns, synced...)
	if err != nil {
		stopPods()
		stopMembers()
		return nil, nil, err
	}
	return w, func() { stopInformers(); stopPods(); stopMembers() }, nil
}

// watchPodVersions logs the resourceVersions of the Pods of ns under the
// Sandbox controlling each. The cache keeps only the metadata the log
// needs: a pool of 3000 would otherwise hold 3000 full Pods in the bench.
func watchPodVersions(ctx context.Context, kube kubernetes.Interface, ns string, log *writeLog) (func(), error) {
	f := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(ns),
		kubeinformers.WithTransform(func(obj any) (any, error) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return obj, nil
			}
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
				Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
				ResourceVersion: pod.ResourceVersion, OwnerReferences: pod.OwnerReferences,
			}}, nil
		}))
	onPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == agentsv1beta1.SandboxKind {
			log.observe(logPod, ref.Name, pod.ResourceVersion)
		}
	}
	reg, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onPod,
		UpdateFunc: func(_, o any) { onPod(o) },
	})
	if err != nil {
		return nil, fmt.Errorf("adding pod watch handler: %w", err)
	}
	return startWatches(ctx, f, "pod watch of "+ns, reg.HasSynced)
}

// informerFactory is what startWatches needs of a shared informer factory
// (client-go's and our generated one alike).
type informerFactory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// startWatches starts f's informers and waits until synced; stop ends
// them. what names the watches in the error.
func startWatches(ctx context.Context, f informerFactory, what string, synced ...cache.InformerSynced) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	f.Start(wctx.Done())
	stop = func() { cancel(); f.Shutdown() }
	if !cache.WaitForCacheSync(wctx.Done(), synced...) {
		stop()
		return nil, fmt.Errorf("%s did not sync", what)
	}
	return stop, nil
}

// poolFull reports whether the pool shows n ready replicas in its status
// and the watch shows exactly n Ready members.
func (w *agentWatch) poolFull(n int) (bool, string) {
	members, ready := w.checker.PoolStats(w.pool)
	w.mu.Lock()
	st := w.poolStatus
	w.mu.Unlock()
	return int(st.ReadyReplicas) == n && ready == n && members == n,
		fmt.Sprintf("status %d/%d ready, watch %d members %d Ready, want %d", st.ReadyReplicas, st.Replicas, members, ready, n)
}

// readyClaims counts the claims seen Ready.
func (w *agentWatch) readyClaims() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.claimReady)
}

// readyOf counts the claims of names seen Ready.
func (w *agentWatch) readyOf(names []string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, name := range names {
		if _, ok := w.claimReady[name]; ok {
			n++
		}
	}
	return n
}

func (w *agentWatch) readyAt(name string) (time.Time, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.claimReady[name]
	return t, w.claimSB[name], ok
}

// readyVersion is the resourceVersion of the claim's first Ready.
func (w *agentWatch) readyVersion(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.claimReadyRV[name]
}

func (w *agentWatch) curvePoints() []Point {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.curve.Points()
}

// poolLow is the fewest Ready members the watch saw between from and to,
// and for how long there were none.
func (w *agentWatch) poolLow(from, to time.Time) (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.curve.Low(from, to)
}

// refilledAt is when the pool was last seen becoming full again.
func (w *agentWatch) refilledAt(n int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	members, _ := w.curve.LastReached(n)
	status, _ := w.statusCurve.LastReached(n)
	// Both curves start at the pool's create request.
	return w.curve.start.Add(max(members, status))
}
