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

// Package sandboxclaim binds each SandboxClaim to exactly one Sandbox: a
// ready member of its warm pool, taken over with one conditional write, or
// a Sandbox created from the pool's template when none is ready. The
// Sandbox's controller reference is the binding; see
// docs/controllers/sandboxclaim.md for the protocol and its crash analysis.
package sandboxclaim

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/agents/v1beta1"
	extinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/extensions/v1beta1"
	agentslisters "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	listers "github.com/agentsandbox/agent-sandbox/generated/listers/extensions/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

const (
	// Name names the workqueue and the controller label of its metrics.
	Name = "sandboxclaim"
	// FieldManager is the field manager of every write and the reporting
	// controller of every Event.
	FieldManager = "sandboxclaim-controller"

	claimsByPoolIndex  = extv1beta1.WarmPoolRefField
	controllerUIDIndex = controller.ControllerUIDIndex
)

var (
	claimGroupKind = extv1beta1.SandboxClaimGroupVersionKind.GroupKind()
	poolGroupKind  = extv1beta1.SandboxWarmPoolGroupVersionKind.GroupKind()
)

// Options configure a Controller.
type Options struct {
	// AllowedLabelDomains are the label prefixes additionalPodMetadata may
	// use (and their subdomains); empty means sandbox.users.io.
	AllowedLabelDomains []string
	Clock               clock.WithTicker
	Metrics             *metrics.ReconcileMetrics
	// ClaimMetrics records bindings and startup latencies; nil records
	// nothing.
	ClaimMetrics *Metrics
	// FirstStatusDelay holds a new claim's first status while its Sandbox
	// is merely starting, for at most this long after the claim's creation
	// (--sandbox-first-status-delay, shared with the Sandbox controller).
	FirstStatusDelay time.Duration
	// Provenance is the warm pool controller's record of the members it
	// made in this process (the same object): a member made from an
	// earlier template is handed out under OnReplenish only when it is
	// there. Nil knows none.
	Provenance *controller.MemberProvenance
	// DisableEvents stops the controller emitting Events
	// (--disable-claim-events): at high claim rates they are a large share
	// of the API writes.
	DisableEvents bool
}

// Controller reconciles SandboxClaims.
type Controller struct {
	kube   kubernetes.Interface
	client clientset.Interface

	claimLister    listers.SandboxClaimLister
	claimIndexer   cache.Indexer
	poolLister     listers.SandboxWarmPoolLister
	templateLister listers.SandboxTemplateLister
	sandboxLister  agentslisters.SandboxLister
	sandboxIndexer cache.Indexer
	synced         []cache.InformerSynced

	queue         controller.Queue
	writtenStatus *controller.WrittenStatus
	broadcaster   events.EventBroadcaster
	recorder      events.EventRecorder
	opts          Options

	mu sync.Mutex
	// bound remembers the Sandbox each claim took over or created until
	// the informer shows it, so a lagging cache can never lead a claim to
	// a second one. Losing it on restart is safe: a fresh informer lists
	// the binding.
	bound map[types.UID]time.Time
	// reserved marks candidates a worker is taking over, so concurrent
	// workers pick different ones instead of colliding on one. Keyed by
	// Sandbox UID; each entry ends at the member's next event or after
	// reservationTTL.
	reserved map[types.UID]reservation
	// firstSeen is when this controller first saw each claim, for the
	// startup latency metric.
	firstSeen map[types.UID]time.Time
	// readyCounted marks claims whose first Ready this controller counted.
	readyCounted map[types.UID]bool
	// boundSandbox is the Sandbox each claim was bound to by this process
	// (or, after a restart, first accepted as its binding): a Sandbox that
	// later names the claim as its controller with another UID is not it.
	boundSandbox map[types.UID]types.UID
	// untrusted remembers the refused Sandboxes already reported, so each
	// is reported once (its status updates would repeat it otherwise).
	untrusted map[types.UID]struct{}
	// matches caches which pool members run their current template.
	matches *controller.MatchCache
}

// NewController builds the controller and registers its handlers. The
// informers must not have been started (indexes are added).
func NewController(ctx context.Context, kube kubernetes.Interface, client clientset.Interface,
	claimInformer extinformers.SandboxClaimInformer, poolInformer extinformers.SandboxWarmPoolInformer,
	templateInformer extinformers.SandboxTemplateInformer, sandboxInformer agentsinformers.SandboxInformer,
	opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if len(opts.AllowedLabelDomains) == 0 {
		opts.AllowedLabelDomains = []string{"sandbox.users.io"}
	}
	broadcaster, recorder, err := controller.NewEventRecorder(kube, FieldManager)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		kube:           kube,
		client:         client,
		claimLister:    claimInformer.Lister(),
		claimIndexer:   claimInformer.Informer().GetIndexer(),
		poolLister:     poolInformer.Lister(),
		templateLister: templateInformer.Lister(),
		sandboxLister:  sandboxInformer.Lister(),
		sandboxIndexer: sandboxInformer.Informer().GetIndexer(),
		queue:          controller.NewQueue(Name, opts.Clock),
		writtenStatus:  controller.NewWrittenStatus(),
		broadcaster:    broadcaster,
		recorder:       recorder,
		opts:           opts,
		bound:          map[types.UID]time.Time{},
		reserved:       map[types.UID]reservation{},
		firstSeen:      map[types.UID]time.Time{},
		readyCounted:   map[types.UID]bool{},
		boundSandbox:   map[types.UID]types.UID{},
		untrusted:      map[types.UID]struct{}{},
		matches:        controller.NewMatchCache(),
	}
	if err := controller.AddIndexers(sandboxInformer.Informer(), cache.Indexers{
		controller.WarmPoolMemberIndex: controller.IndexByWarmPool,
		controller.ControllerUIDIndex:  controller.IndexByControllerUID,
	}); err != nil {
		return nil, err
	}
	if err := controller.AddIndexers(claimInformer.Informer(), cache.Indexers{claimsByPoolIndex: indexByPool}); err != nil {
		return nil, err
	}

	handlerOpts := cache.HandlerOptions{Logger: &logger}
	reg, err := claimInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimAdded,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.claimDeleted,
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = sandboxInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.sandboxChanged,
		UpdateFunc: func(_, obj any) { c.sandboxChanged(obj) },
		DeleteFunc: c.sandboxDeleted,
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = poolInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc: c.wakeWaitingClaims,
		UpdateFunc: func(oldObj, newObj any) {
			if oldObj.(metav1.Object).GetGeneration() != newObj.(metav1.Object).GetGeneration() {
				c.wakeWaitingClaims(newObj)
			}
		},
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced, templateInformer.Informer().HasSynced)
	return c, nil
}

// Run syncs claims with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	w := controller.Workers{Name: Name, KeyName: "sandboxClaim", Queue: c.queue, Broadcaster: c.broadcaster,
		Synced: c.synced, Metrics: c.opts.Metrics, Clock: c.opts.Clock, Sync: c.sync}
	w.Run(ctx, workers)
}

func (c *Controller) enqueue(obj any) { controller.EnqueueKey(c.queue, obj) }

func (c *Controller) claimAdded(obj any) {
	if claim, ok := obj.(*extv1beta1.SandboxClaim); ok {
		c.mu.Lock()
		c.firstSeen[claim.UID] = c.opts.Clock.Now()
		c.mu.Unlock()
	}
	c.enqueue(obj)
}

func (c *Controller) claimDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if claim, ok := obj.(*extv1beta1.SandboxClaim); ok {
		c.mu.Lock()
		delete(c.firstSeen, claim.UID)
		delete(c.readyCounted, claim.UID)
		delete(c.bound, claim.UID)
		delete(c.boundSandbox, claim.UID)
		c.mu.Unlock()
		c.writtenStatus.Forget(claim.UID)
	}
	c.enqueue(obj)
}

func (c *Controller) sandboxDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if sb, ok := obj.(*agentsv1beta1.Sandbox); ok {
		c.mu.Lock()
		delete(c.untrusted, sb.UID)
		c.mu.Unlock()
		c.matches.Forget(sb.UID)
		c.releaseIfMoved(sb, true)
	}
	c.sandboxChanged(obj)
}

// sandboxChanged wakes the claim that controls a Sandbox, and ends the
// reservation of a candidate that moved on.
func (c *Controller) sandboxChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	if !ok {
		return
	}
	c.releaseIfMoved(sb, false)

	if ref := controller.ControllerOfKind(sb, claimGroupKind); ref != nil {
		c.queue.Add(cache.ObjectName{Namespace: sb.Namespace, Name: ref.Name})
	}
}

// wakeWaitingClaims requeues the unbound claims of a pool that appeared or
// changed, so WarmPoolNotFound resolves at once.
func (c *Controller) wakeWaitingClaims(obj any) {
	pool, ok := obj.(*extv1beta1.SandboxWarmPool)
	if !ok {
		return
	}
	claims, err := c.claimIndexer.ByIndex(claimsByPoolIndex, pool.Namespace+"/"+pool.Name)
	if err != nil {
		return
	}
	for _, o := range claims {
		if claim := o.(*extv1beta1.SandboxClaim); claim.Status.SandboxStatus.Name == "" && claim.DeletionTimestamp == nil {
			c.enqueue(claim)
		}
	}
}

func indexByPool(obj any) ([]string, error) {
	claim, ok := obj.(*extv1beta1.SandboxClaim)
	if !ok || claim.Spec.WarmPoolRef.Name == "" {
		return nil, nil
	}
	return []string{claim.Namespace + "/" + claim.Spec.WarmPoolRef.Name}, nil
}
