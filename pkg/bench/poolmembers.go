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
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// poolMembers counts the live Sandboxes each pool controls, for the
// pool-overfilled rule, from states the API server really held.
//
// An informer cannot give that: after a relist (an API server restart, a
// watch too old) its DeltaFIFO hands the handlers the new list one object
// at a time in key order, then the tombstones of what vanished. Counting
// after each of those events mixes the old and the new state: a member
// taken by a claim during the gap still counts while its replacement
// already does, and a pool of 20 seems to hold 28. A Reflector writing
// into this store instead applies watch events in resourceVersion order
// (each one yields the state at that version) and a relist as one
// Replace (the state at the list's version), so every count is of a
// state that existed.
type poolMembers struct {
	poolKind string
	// observe receives, after every change, the members of each pool the
	// change touched (sorted names; empty when the pool has none left).
	observe func(at time.Time, pool string, names []string)

	mu sync.Mutex
	// pool is the pool controlling each live Sandbox, by name; Sandboxes
	// no pool controls are absent.
	pool   map[string]string
	synced bool
}

var _ cache.ReflectorStore = (*poolMembers)(nil)

func newPoolMembers(poolKind string, observe func(at time.Time, pool string, names []string)) *poolMembers {
	return &poolMembers{poolKind: poolKind, observe: observe, pool: map[string]string{}}
}

// controllingPool returns the pool controlling obj, or "" when none does
// or it is being deleted (a Sandbox on its way out no longer counts).
func (p *poolMembers) controllingPool(obj any) (name, pool string, ok bool) {
	sb, ok := tombstone(obj).(*agentsv1beta1.Sandbox)
	if !ok {
		return "", "", false
	}
	if ref := metav1.GetControllerOf(sb); ref != nil && ref.Kind == p.poolKind && sb.DeletionTimestamp == nil {
		pool = ref.Name
	}
	return sb.Name, pool, true
}

func (p *poolMembers) set(obj any) error {
	name, pool, ok := p.controllingPool(obj)
	if !ok {
		return fmt.Errorf("pool members: unexpected object %T", obj)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.pool[name]
	if pool == "" {
		delete(p.pool, name)
	} else {
		p.pool[name] = pool
	}
	p.report(old, pool)
	return nil
}

// Add records a Sandbox the watch created or the list holds.
func (p *poolMembers) Add(obj any) error { return p.set(obj) }

// Update records a changed Sandbox.
func (p *poolMembers) Update(obj any) error { return p.set(obj) }

// Delete forgets a Sandbox that no longer exists.
func (p *poolMembers) Delete(obj any) error {
	name, _, ok := p.controllingPool(obj)
	if !ok {
		return fmt.Errorf("pool members: unexpected object %T", obj)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.pool[name]
	delete(p.pool, name)
	p.report(old)
	return nil
}

// Replace swaps in a whole list at once: one consistent state.
func (p *poolMembers) Replace(list []any, _ string) error {
	next := map[string]string{}
	for _, obj := range list {
		name, pool, ok := p.controllingPool(obj)
		if !ok {
			return fmt.Errorf("pool members: unexpected object %T", obj)
		}
		if pool != "" {
			next[name] = pool
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var touched []string
	for _, m := range []map[string]string{p.pool, next} {
		for _, pool := range m {
			touched = append(touched, pool)
		}
	}
	p.pool = next
	p.synced = true
	p.report(touched...)
	return nil
}

// Resync has nothing to do: the store holds no queue.
func (p *poolMembers) Resync() error { return nil }

func (p *poolMembers) hasSynced() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.synced
}

// report hands observe the members of each named pool. Called under mu.
func (p *poolMembers) report(pools ...string) {
	now := time.Now()
	done := map[string]bool{"": true}
	for _, pool := range pools {
		if done[pool] {
			continue
		}
		done[pool] = true
		var names []string
		for name, of := range p.pool {
			if of == pool {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		p.observe(now, pool, names)
	}
}

// watchPoolMembers runs a Reflector over the Sandboxes of ns into a
// poolMembers feeding checker, and waits for its first list.
func watchPoolMembers(ctx context.Context, agents versioned.Interface, ns string, checker *Checker) (stop func(), err error) {
	store := newPoolMembers(checker.poolKind, checker.ObservePoolMembers)
	sandboxes := agents.AgentsV1beta1().Sandboxes(ns)
	// Streaming lists need the client's support; the fake clientset says
	// it has none.
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return sandboxes.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return sandboxes.Watch(ctx, o)
		},
	}, agents)
	r := cache.NewReflectorWithOptions(lw, &agentsv1beta1.Sandbox{}, store, cache.ReflectorOptions{Name: "pool members of " + ns})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunWithContext(rctx)
	}()
	stop = func() { cancel(); <-done }
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return store.hasSynced(), nil
	}); err != nil {
		stop()
		return nil, fmt.Errorf("pool member watch of %s did not sync: %w", ns, err)
	}
	return stop, nil
}
