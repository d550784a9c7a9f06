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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// The returned stop func ends them.
func (e *Env) watchAgents(ctx context.Context, ns, pool string, start time.Time) (*agentWatch, func(), error) {
	w := &agentWatch{
		checker: NewChecker(start, extv1beta1.SandboxClaimKind, extv1beta1.SandboxWarmPoolKind),
		pool:    pool, curve: NewCurve(start), statusCurve: NewCurve(start),
		claimReady: map[string]time.Time{}, claimSB: map[string]string{},
		statuses: map[string]extv1beta1.SandboxWarmPoolStatus{},
	}
	f := informers.NewSharedInformerFactoryWithOptions(e.Agents, 0, informers.WithNamespace(ns))
	onSandbox := func(obj any, deleted bool) {
		sb, ok := tombstone(obj).(*agentsv1beta1.Sandbox)
		if !ok {
			return
		}
		now := time.Now()
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
		w.checker.ObserveClaim(now, o)
		w.mu.Lock()
		defer w.mu.Unlock()
		if o.Ready && !o.Deleted {
			if _, seen := w.claimReady[o.Name]; !seen {
				w.claimReady[o.Name] = now
				w.claimSB[o.Name] = o.Sandbox
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
	stopInformers, err := startWatches(ctx, f, "watches of namespace "+ns, synced...)
	if err != nil {
		stopMembers()
		return nil, nil, err
	}
	return w, func() { stopInformers(); stopMembers() }, nil
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

func (w *agentWatch) readyAt(name string) (time.Time, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.claimReady[name]
	return t, w.claimSB[name], ok
}

func (w *agentWatch) curvePoints() []Point {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.curve.Points()
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
