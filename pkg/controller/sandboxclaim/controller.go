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
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"go.opentelemetry.io/otel/trace"

	agentsscheme "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	agentsinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/agents/v1beta1"
	extinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/extensions/v1beta1"
	agentslisters "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	listers "github.com/agentsandbox/agent-sandbox/generated/listers/extensions/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
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
	// EventMetrics counts the controller's Event writes; nil counts nothing.
	EventMetrics *metrics.EventMetrics
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
	Provenance *sandboxpolicy.MemberProvenance
	// SecureDefaults harden the pod spec of cold Sandboxes; the zero value
	// is the reference's. It must be the warm pool controller's, or
	// members built with other defaults would not be taken.
	SecureDefaults sandboxpolicy.SecureDefaults
	// DisableEvents stops the controller emitting Events
	// (--disable-claim-events): at high claim rates they are a large share
	// of the API writes.
	DisableEvents bool
	// Tracer, when not nil, traces each claim and each pass
	// (--enable-tracing; see claimTraces).
	Tracer trace.Tracer
}

// Controller reconciles SandboxClaims.
type Controller struct {
	kube   kubeclient.Interface
	client agentsclient.Interface

	claimLister    listers.SandboxClaimLister
	claimIndexer   cache.Indexer
	poolLister     listers.SandboxWarmPoolLister
	templateLister listers.SandboxTemplateLister
	sandboxLister  agentslisters.SandboxLister
	sandboxIndexer cache.Indexer
	synced         []cache.InformerSynced

	queue    controller.Queue
	events   *eventsink.Sink
	recorder eventsink.EventRecorder
	opts     Options

	// state is all the controller remembers in memory (see claimState
	// for what bounds each part).
	state *claimState
	// traces holds each unready claim's span; nil with tracing off.
	traces *claimTraces
	// status writes claim status; its record of writes the cache does not
	// show yet is state.written.
	status *controller.StatusWriter[extv1beta1.SandboxClaimStatus]
}

// NewController builds the controller and registers its handlers. The
// informers must not have been started (indexes are added).
func NewController(ctx context.Context, kube kubeclient.Interface, client agentsclient.Interface,
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
	sink, recorder, err := controller.NewEventRecorder(ctx, kube, FieldManager, opts.EventMetrics, agentsscheme.AddToScheme)
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
		events:         sink,
		recorder:       recorder,
		opts:           opts,
		state:          newClaimState(opts.Clock),
		traces:         newClaimTraces(opts.Tracer),
	}
	c.status = controller.NewStatusWriter[extv1beta1.SandboxClaimStatus](func(ctx context.Context, namespace, name string, patch []byte) error {
		_, err := client.ExtensionsV1beta1().SandboxClaims(namespace).Patch(ctx, name, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: FieldManager}, "status")
		return err
	}, nil, c.state.written)
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
		AddFunc: c.sandboxChanged,
		UpdateFunc: func(oldObj, newObj any) {
			// A router's activity write changes nothing a claim shows.
			if !controller.OnlyActivityChanged(oldObj, newObj) {
				c.sandboxChanged(newObj)
			}
		},
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
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = templateInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc: c.templateChanged,
		UpdateFunc: func(oldObj, newObj any) {
			if oldObj.(metav1.Object).GetGeneration() != newObj.(metav1.Object).GetGeneration() {
				c.templateChanged(newObj)
			}
		},
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	return c, nil
}

// Run syncs claims with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	w := controller.Workers{Name: Name, KeyName: "sandboxClaim", Queue: c.queue, Events: c.events,
		Synced: c.synced, Metrics: c.opts.Metrics, Clock: c.opts.Clock, Sync: c.sync}
	w.Run(ctx, workers)
}

func (c *Controller) enqueue(obj any) { controller.EnqueueKey(c.queue, obj) }

func (c *Controller) claimAdded(obj any) {
	if claim, ok := obj.(*extv1beta1.SandboxClaim); ok {
		c.state.seen(claim)
	}
	c.enqueue(obj)
}

// claimDeleted frees the claim's state at once; the sync its key gets
// then finds it gone and frees it again, which also covers a delete event
// that never came.
func (c *Controller) claimDeleted(obj any) {
	obj = controller.DeletedObject(obj)
	if claim, ok := obj.(*extv1beta1.SandboxClaim); ok {
		c.state.forget(claim.UID)
	}
	c.enqueue(obj)
}

func (c *Controller) sandboxDeleted(obj any) {
	obj = controller.DeletedObject(obj)
	if sb, ok := obj.(*agentsv1beta1.Sandbox); ok {
		c.state.sandboxGone(sb.UID)
		// A claim of the same name may be waiting for the name to be
		// free (a Sandbox it does not control held it).
		if _, err := c.claimLister.SandboxClaims(sb.Namespace).Get(sb.Name); err == nil {
			c.queue.Add(cache.ObjectName{Namespace: sb.Namespace, Name: sb.Name})
		}
	}
	c.sandboxChanged(obj)
}

// StateSize reports what the controller holds in memory; with no claims
// left it is all zero. For tests and debugging.
func (c *Controller) StateSize() StateSize { return c.state.size() }

// cached reports whether the informer cache still holds sb. State keyed
// by a Sandbox that is stored after its delete event was handled would
// never be freed; this check, made after storing, closes that window.
func (c *Controller) cached(sb *agentsv1beta1.Sandbox) bool {
	obj, exists, err := c.sandboxIndexer.GetByKey(sb.Namespace + "/" + sb.Name)
	return err == nil && exists && obj.(*agentsv1beta1.Sandbox).UID == sb.UID
}

// matches is the cached verdict of checker on sb.
func (c *Controller) matches(checker *sandboxpolicy.StalenessChecker, sb *agentsv1beta1.Sandbox) bool {
	v, stored := c.state.matches.Verdict(checker, sb)
	if stored && !c.cached(sb) {
		c.state.matches.Forget(sb.UID)
	}
	return v
}

// sandboxChanged wakes the claim that controls a Sandbox, and ends the
// reservation of a candidate that moved on.
func (c *Controller) sandboxChanged(obj any) {
	obj = controller.DeletedObject(obj)
	sb, ok := obj.(*agentsv1beta1.Sandbox)
	if !ok {
		return
	}
	c.state.sandboxChanged(sb)

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

// templateChanged wakes the unbound claims of the pools that use a
// template that appeared or changed: its policies decide whether a claim's
// env and volume claim templates are allowed.
func (c *Controller) templateChanged(obj any) {
	tmpl, ok := obj.(*extv1beta1.SandboxTemplate)
	if !ok {
		return
	}
	pools, err := c.poolLister.SandboxWarmPools(tmpl.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, pool := range pools {
		if pool.Spec.TemplateRef.Name == tmpl.Name {
			c.wakeWaitingClaims(pool)
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
