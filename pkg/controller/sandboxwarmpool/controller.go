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

// Package sandboxwarmpool keeps each SandboxWarmPool at spec.replicas
// ready, unclaimed Sandboxes made from its template, without ever owning
// more: creates are gated by expectations that the informer must confirm
// before the next batch, so informer lag cannot cause over-creation.
package sandboxwarmpool

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"go.opentelemetry.io/otel/trace"

	agentsscheme "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	agentsinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/agents/v1beta1"
	extinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/extensions/v1beta1"
	agentslisters "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	listers "github.com/agentsandbox/agent-sandbox/generated/listers/extensions/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/agentsclient"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const (
	// Name names the workqueue and the controller label of its metrics.
	Name = "sandboxwarmpool"
	// FieldManager is the field manager of every write and the reporting
	// controller of every Event.
	FieldManager = "sandboxwarmpool-controller"

	// poolsByTemplateIndex indexes pools by the template they name.
	poolsByTemplateIndex = extv1beta1.TemplateRefField

	// passInterval is the least time between two passes over one pool
	// that its members' events or its own timers start. A pass judges
	// every member, and each claim changes members three to four times
	// (taken, replacement created, its Pod named, Ready): unspaced, a pool
	// of N under R claims a second costs ~3.5·R·N member checks a second
	// (measured: 3.3 passes per claim at 10/s); spaced, at most
	// N/passInterval. A new generation of the pool (a scale), its create
	// and delete, and its template's events are not held, so they are
	// answered at once; a refill starts at most this late, small next to a
	// member's start-up.
	passInterval = 100 * time.Millisecond
)

var poolGroupKind = extv1beta1.SandboxWarmPoolGroupVersionKind.GroupKind()

// Options configure a Controller.
type Options struct {
	// MaxBatchSize caps creates and deletes per pass.
	MaxBatchSize int
	// ReadinessGracePeriod is how long a member may stay not Ready before
	// it is replaced.
	ReadinessGracePeriod time.Duration
	// UnschedulableRecheck is how often held, unschedulable members are
	// looked at again.
	UnschedulableRecheck time.Duration
	// EvictableMembers marks idle warm Pods safe to evict for the cluster
	// autoscaler.
	EvictableMembers bool
	// ReplenishDelay holds a pool's refill for this long after its member
	// count last dropped (--sandbox-warm-pool-replenish-delay); 0 is off.
	ReplenishDelay time.Duration
	// MaxRefillRate caps each pool's creates per second
	// (--sandbox-warm-pool-max-refill-rate); 0 is unlimited.
	MaxRefillRate float64
	// Tracer, when not nil, traces each pool pass (--enable-tracing).
	Tracer trace.Tracer
	// Provenance records the members this controller creates; the claim
	// controller of the same process must get the same one, so it can hand
	// out members made from an earlier template (OnReplenish). Nil makes a
	// private one.
	Provenance *sandboxpolicy.MemberProvenance
	// SecureDefaults harden the members' pod spec; the zero value is the
	// reference's. The claim controller must get the same, or it would
	// judge members built with other defaults stale.
	SecureDefaults sandboxpolicy.SecureDefaults
	Clock          clock.WithTicker
	Metrics        *metrics.ReconcileMetrics
	// EventMetrics counts the controller's Event writes; nil counts nothing.
	EventMetrics *metrics.EventMetrics
}

// Controller reconciles SandboxWarmPools.
type Controller struct {
	kube   kubeclient.Interface
	client agentsclient.Interface

	poolLister     listers.SandboxWarmPoolLister
	poolIndexer    cache.Indexer
	templateLister listers.SandboxTemplateLister
	sandboxLister  agentslisters.SandboxLister
	memberIndexer  cache.Indexer
	podLister      corelisters.PodLister
	synced         []cache.InformerSynced

	queue        controller.Queue
	events       *eventsink.Sink
	recorder     eventsink.EventRecorder
	expectations *controller.Expectations
	opts         Options
	refill       *refillShaper
	// afterClassify runs between counting the members and deciding; a test
	// seam for the informer delivering events in that gap.
	afterClassify func()
	statusPacer   *statusPacer
	// passes spaces out the passes over each pool (passInterval).
	passes spacing
	status *controller.StatusWriter[extv1beta1.SandboxWarmPoolStatus]
	// unknownCreates holds pools whose last create may or may not have
	// landed, until the informer shows what a live list found.
	unknownCreates *unknownCreates

	// notProgressing remembers pools with held unschedulable members, so
	// the Warning and the recovery Event are sent on transitions only.
	mu             sync.Mutex
	notProgressing map[string]bool
	// refused remembers the refused Sandboxes already reported, so each
	// is reported once (its status updates would repeat it otherwise).
	refused      map[types.UID]struct{}
	refusedSweep controller.UIDSweep
	// matches caches which members run the current template.
	matches *sandboxpolicy.MatchCache
}

// NewController builds the controller and registers its handlers. The
// informers must not have been started (indexes are added).
func NewController(ctx context.Context, kube kubeclient.Interface, client agentsclient.Interface,
	poolInformer extinformers.SandboxWarmPoolInformer, templateInformer extinformers.SandboxTemplateInformer,
	sandboxInformer agentsinformers.SandboxInformer, podLister corelisters.PodLister, podsSynced cache.InformerSynced,
	opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = 300
	}
	if opts.ReadinessGracePeriod <= 0 {
		opts.ReadinessGracePeriod = 5 * time.Minute
	}
	if opts.UnschedulableRecheck <= 0 {
		opts.UnschedulableRecheck = time.Minute
	}
	if opts.Provenance == nil {
		opts.Provenance = sandboxpolicy.NewMemberProvenance()
	}
	sink, recorder, err := controller.NewEventRecorder(ctx, kube, FieldManager, opts.EventMetrics, agentsscheme.AddToScheme)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		kube:           kube,
		client:         client,
		poolLister:     poolInformer.Lister(),
		poolIndexer:    poolInformer.Informer().GetIndexer(),
		templateLister: templateInformer.Lister(),
		sandboxLister:  sandboxInformer.Lister(),
		memberIndexer:  sandboxInformer.Informer().GetIndexer(),
		podLister:      podLister,
		queue:          controller.NewQueue(Name, opts.Clock),
		events:         sink,
		recorder:       recorder,
		expectations:   controller.NewExpectations(opts.Clock),
		opts:           opts,
		refill:         newRefillShaper(opts.ReplenishDelay, opts.MaxRefillRate),
		statusPacer:    newStatusPacer(statusWriteInterval),
		passes:         newSpacing(passInterval),
		notProgressing: map[string]bool{},
		refused:        map[types.UID]struct{}{},
		unknownCreates: newUnknownCreates(),
		matches:        sandboxpolicy.NewMatchCache(),
	}
	c.status = controller.NewStatusWriter(func(ctx context.Context, namespace, name string, patch []byte) error {
		_, err := client.ExtensionsV1beta1().SandboxWarmPools(namespace).Patch(ctx, name, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: FieldManager}, "status")
		return err
	}, statusBody, nil)
	if err := controller.AddIndexers(sandboxInformer.Informer(), cache.Indexers{controller.WarmPoolMemberIndex: controller.IndexByWarmPool}); err != nil {
		return nil, err
	}
	if err := poolInformer.Informer().AddIndexers(cache.Indexers{poolsByTemplateIndex: poolTemplate}); err != nil {
		return nil, err
	}

	handlerOpts := cache.HandlerOptions{Logger: &logger}
	poolHandler := controller.EnqueueSelf(c.queue)
	poolHandler.UpdateFunc = c.onPoolUpdated
	poolHandler.DeleteFunc = c.onPoolDeleted
	reg, err := poolInformer.Informer().AddEventHandlerWithOptions(poolHandler, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = sandboxInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key, ok := poolKey(obj); ok {
				// Lower the expectation before the pool is synced again, so
				// the sync this event triggers counts the new member.
				c.expectations.CreationObserved(key.String())
				c.enqueueSpaced(key)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			if o, n := oldObj.(metav1.Object), newObj.(metav1.Object); o.GetResourceVersion() == n.GetResourceVersion() {
				return
			}
			for _, obj := range []any{oldObj, newObj} {
				if key, ok := poolKey(obj); ok {
					c.enqueueSpaced(key)
				}
			}
			if _, ok := poolKey(newObj); !ok {
				// Claimed (or released): no longer a member to judge.
				c.forgetMember(newObj.(metav1.Object).GetUID())
			}
		},
		DeleteFunc: func(obj any) {
			obj = controller.DeletedObject(obj)
			if m, ok := obj.(metav1.Object); ok {
				c.forgetMember(m.GetUID())
			}
			if key, ok := poolKey(obj); ok {
				c.expectations.DeletionObserved(key.String(), string(obj.(metav1.Object).GetUID()))
				c.enqueueSpaced(key)
			}
		},
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = templateInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePoolsOf,
		UpdateFunc: func(_, obj any) { c.enqueuePoolsOf(obj) },
		DeleteFunc: c.enqueuePoolsOf,
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced, podsSynced)
	return c, nil
}

// Run syncs pools with workers goroutines until ctx is done, and sweeps
// the per-member state every memberSweepInterval.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.sweepEvery(ctx, memberSweepInterval) })
	w := controller.Workers{Name: Name, KeyName: "sandboxWarmPool", Queue: c.queue, Events: c.events,
		Synced: c.synced, Metrics: c.opts.Metrics, Clock: c.opts.Clock, Sync: c.sync}
	w.Run(ctx, workers)
}

// onPoolDeleted forgets the pool's state at once and queues it (the sync
// that finds it gone forgets again: delete events can be missed, and a
// pool recreated under the same name must not inherit the old one's
// expectations).
func (c *Controller) onPoolDeleted(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		return
	}
	c.forgetPool(key.String())
	c.status.Forget(obj)
	c.queue.Add(key)
}

// onPoolUpdated queues a pool whose spec changed (a new generation) or
// that is being deleted at once; a change of its status (this
// controller's own write) or metadata owes nothing at once and is spaced.
func (c *Controller) onPoolUpdated(oldObj, newObj any) {
	o, n := oldObj.(*extv1beta1.SandboxWarmPool), newObj.(*extv1beta1.SandboxWarmPool)
	if o.Generation == n.Generation && (o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil) {
		c.enqueueSpaced(cache.MetaObjectToName(n))
		return
	}
	c.enqueue(n)
}

// forgetPool drops everything kept per pool key.
func (c *Controller) forgetPool(key string) {
	c.expectations.Forget(key)
	c.refill.forget(key)
	c.statusPacer.forget(key)
	c.passes.forget(key)
	c.unknownCreates.forget(key)
	c.setProgressing(key, nil, 0, 0)
}

func (c *Controller) enqueue(obj any) { controller.EnqueueKey(c.queue, obj) }

// enqueueSpaced queues a pool for a member's event: at once when its last
// pass started passInterval ago or more, else for then (the delaying
// queue keeps one entry per key, so the events in between share a pass).
func (c *Controller) enqueueSpaced(key cache.ObjectName) {
	if wait := c.passes.remaining(key.String(), c.opts.Clock.Now()); wait > 0 {
		c.queue.AddAfter(key, wait)
		return
	}
	c.queue.Add(key)
}

// enqueuePoolsOf wakes every pool that uses a template.
func (c *Controller) enqueuePoolsOf(obj any) {
	obj = controller.DeletedObject(obj)
	tmpl, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	pools, err := c.poolIndexer.ByIndex(poolsByTemplateIndex, tmpl.GetNamespace()+"/"+tmpl.GetName())
	if err != nil {
		return
	}
	for _, p := range pools {
		c.enqueue(p)
	}
}

// forgetMember drops what is remembered about a Sandbox that left.
func (c *Controller) forgetMember(uid types.UID) {
	c.opts.Provenance.Forget(uid)
	c.matches.Forget(uid)
	c.mu.Lock()
	delete(c.refused, uid)
	c.mu.Unlock()
}

// poolKey is the pool that controls a Sandbox, by group and kind.
func poolKey(obj any) (cache.ObjectName, bool) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return cache.ObjectName{}, false
	}
	ref := controller.ControllerOfKind(m, poolGroupKind)
	if ref == nil {
		return cache.ObjectName{}, false
	}
	return cache.ObjectName{Namespace: m.GetNamespace(), Name: ref.Name}, true
}

func poolTemplate(obj any) ([]string, error) {
	p, ok := obj.(*extv1beta1.SandboxWarmPool)
	if !ok || p.Spec.TemplateRef.Name == "" {
		return nil, nil
	}
	return []string{p.Namespace + "/" + p.Spec.TemplateRef.Name}, nil
}
