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

// Package sandbox is the core controller: it turns each Sandbox into one
// Pod, its PersistentVolumeClaims and optionally a headless Service, keeps
// a strict one-to-one Sandbox to Pod mapping, suspends and resumes, expires
// Sandboxes at their shutdown time, and reports all of it in status.
package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"go.opentelemetry.io/otel/trace"

	coreinformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions/core/v1"
	listers "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

const (
	// Name names the workqueue and the controller label of its metrics.
	Name = "sandbox"
	// FieldManager is the field manager of every write, and the reporting
	// controller of every Event.
	FieldManager = "sandbox-controller"

	// podNameHashIndex indexes Pods by their sandbox-name-hash label, so a
	// Sandbox finds its Pods without scanning the namespace.
	podNameHashIndex = "sandboxNameHash"
)

var sandboxGroupKind = agentsv1beta1.SandboxGroupVersionKind.GroupKind()

// Options configure a Controller.
type Options struct {
	// ClusterDomain completes status.serviceFQDN.
	ClusterDomain string
	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
	// Metrics records syncs; nil records nothing.
	Metrics *metrics.ReconcileMetrics
	// EventMetrics counts the controller's Event writes; nil counts nothing.
	EventMetrics *metrics.EventMetrics
	// FirstStatusDelay holds back a new Sandbox's first status while all it
	// would say is "not ready yet" (its Pod starting, no error), for at most
	// this long after its creation: a Pod that is Ready within it costs one
	// status write instead of two. Zero writes at once.
	FirstStatusDelay time.Duration
	// WriteBehindWindow defers the metadata patch of an owned Pod by up to
	// this long (at most 1 s) so that changes in a burst cost one patch
	// (--sandbox-write-behind-window); zero writes at once.
	WriteBehindWindow time.Duration
	// Owners are the rules of the kinds that control Sandboxes (the
	// extensions' warm pools and claims: sandboxpolicy.SandboxOwners):
	// which of a Sandbox's labels and annotations its Pod carries while
	// one of them controls it. This package knows no such kind; nil
	// passes nothing on.
	Owners controller.OwnerRules
	// IdleSuspendGrace is added to an idle Sandbox's window before it is
	// suspended (--idle-suspend-grace): it covers the routers' write
	// latency and clock skew.
	IdleSuspendGrace time.Duration
	// Tracer, when not nil, traces each reconcile (--enable-tracing); nil
	// is off and costs nothing.
	Tracer trace.Tracer
}

// SandboxClient is what this controller calls on Sandboxes; the generated
// typed client (clientset.AgentsV1beta1().Sandboxes(ns)) satisfies it.
// The controller takes this instead of the clientset because the
// clientset's scheme registers every API group, and the core controller
// must not depend on the extensions API (docs/architecture.md).
type SandboxClient interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*agentsv1beta1.Sandbox, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	// Get is the live read before an adoption (RecheckDeletionTimestamp).
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*agentsv1beta1.Sandbox, error)
}

// SandboxesGetter returns the SandboxClient of a namespace, as in
//
//	func(ns string) sandbox.SandboxClient { return agents.AgentsV1beta1().Sandboxes(ns) }
type SandboxesGetter func(namespace string) SandboxClient

// Controller reconciles Sandboxes.
type Controller struct {
	kube      kubeclient.Interface
	sandboxes SandboxesGetter

	sandboxLister listers.SandboxLister
	podLister     corelisters.PodLister
	podIndexer    cache.Indexer
	serviceLister corelisters.ServiceLister
	pvcLister     corelisters.PersistentVolumeClaimLister
	synced        []cache.InformerSynced

	queue        controller.Queue
	events       *eventsink.Sink
	recorder     eventsink.EventRecorder
	expectations *controller.Expectations
	opts         Options
	writeBehind  *writeBehind
	idleWarnings idleWarnings
	// namespaceGoing: Sandboxes whose namespace refused their children
	// as being deleted; their passes are skipped until they go.
	namespaceGoing namespaceGoing
	status         *controller.StatusWriter[agentsv1beta1.SandboxStatus]

	// syncHandler is sync, replaceable in tests.
	syncHandler controller.SyncFunc
}

// NewController builds the controller and registers its event handlers.
// The informers must not have been started yet (an index is added to the
// Pod informer). sandboxInformer is the generated Sandbox informer's
// Informer() (agents v1beta1), taken untyped for the reason given at
// SandboxClient.
func NewController(ctx context.Context, kube kubeclient.Interface, sandboxes SandboxesGetter,
	sandboxInformer cache.SharedIndexInformer, podInformer coreinformers.PodInformer,
	serviceInformer coreinformers.ServiceInformer, pvcInformer coreinformers.PersistentVolumeClaimInformer,
	opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}

	sink, recorder, err := controller.NewEventRecorder(ctx, kube, FieldManager, opts.EventMetrics, agentsv1beta1.Install)
	if err != nil {
		return nil, err
	}

	c := &Controller{
		kube:          kube,
		sandboxes:     sandboxes,
		sandboxLister: listers.NewSandboxLister(sandboxInformer.GetIndexer()),
		podLister:     podInformer.Lister(),
		podIndexer:    podInformer.Informer().GetIndexer(),
		serviceLister: serviceInformer.Lister(),
		pvcLister:     pvcInformer.Lister(),
		queue:         controller.NewQueue(Name, opts.Clock),
		events:        sink,
		recorder:      recorder,
		expectations:  controller.NewExpectations(opts.Clock),
		opts:          opts,
		writeBehind:   newWriteBehind(opts.WriteBehindWindow),
	}
	c.status = controller.NewStatusWriter[agentsv1beta1.SandboxStatus](func(ctx context.Context, namespace, name string, patch []byte) error {
		_, err := sandboxes(namespace).Patch(ctx, name, mergePatch, patch, metav1.PatchOptions{FieldManager: FieldManager}, "status")
		return err
	}, nil, nil)
	c.syncHandler = c.sync

	if err := podInformer.Informer().AddIndexers(cache.Indexers{podNameHashIndex: indexByNameHash}); err != nil {
		return nil, fmt.Errorf("adding pod index: %w", err)
	}

	handlerOpts := cache.HandlerOptions{Logger: &logger}
	sandboxHandler := controller.EnqueueSelf(c.queue)
	sandboxHandler.UpdateFunc = func(oldObj, newObj any) {
		// Router activity writes cost no sync: the idle deadline's
		// timer re-reads the Sandbox.
		if !controller.OnlyActivityChanged(oldObj, newObj) {
			controller.EnqueueKey(c.queue, newObj)
		}
	}
	sandboxHandler.DeleteFunc = c.onSandboxDeleted
	reg, err := sandboxInformer.AddEventHandlerWithOptions(sandboxHandler, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)

	reg, err = podInformer.Informer().AddEventHandlerWithOptions(cache.FilteringResourceEventHandler{
		FilterFunc: isSandboxChild,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onPodAdded,
			UpdateFunc: c.onPodUpdated,
			DeleteFunc: c.onPodDeleted,
		},
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)

	reg, err = serviceInformer.Informer().AddEventHandlerWithOptions(cache.FilteringResourceEventHandler{
		FilterFunc: isSandboxChild,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueOwner,
			UpdateFunc: c.updateChild,
			DeleteFunc: c.enqueueOwner,
		},
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced, pvcInformer.Informer().HasSynced)
	return c, nil
}

// Run starts workers and blocks until ctx is done, then waits for the
// syncs in flight.
func (c *Controller) Run(ctx context.Context, workers int) {
	w := controller.Workers{Name: Name, KeyName: "sandbox", Queue: c.queue, Events: c.events,
		Synced: c.synced, Metrics: c.opts.Metrics, Clock: c.opts.Clock, Sync: c.syncHandler}
	w.Run(ctx, workers)
}

// ownerKey returns the key of the Sandbox that controls obj, if the
// controller reference names a Sandbox that exists with that UID.
func (c *Controller) ownerKey(obj metav1.Object) (cache.ObjectName, bool) {
	ref := controller.ControllerOfKind(obj, sandboxGroupKind)
	if ref == nil {
		return cache.ObjectName{}, false
	}
	sb, err := c.sandboxLister.Sandboxes(obj.GetNamespace()).Get(ref.Name)
	if err != nil || sb.UID != ref.UID {
		return cache.ObjectName{}, false
	}
	return cache.ObjectName{Namespace: sb.Namespace, Name: sb.Name}, true
}

// ownerOrCandidate returns the key of the Sandbox that controls obj or, for
// an orphan, of the Sandbox it may be adopted by: the one whose name it
// carries, when its name-hash label matches that Sandbox.
func (c *Controller) ownerOrCandidate(obj metav1.Object) (cache.ObjectName, bool) {
	if key, ok := c.ownerKey(obj); ok {
		return key, true
	}
	if metav1.GetControllerOfNoCopy(obj) != nil {
		return cache.ObjectName{}, false
	}
	// An orphan named like a Sandbox that consents to adoption (the
	// adoptable label or that Sandbox's hash) is one it may take: wake it.
	sb, err := c.sandboxLister.Sandboxes(obj.GetNamespace()).Get(obj.GetName())
	if err != nil || !canAdopt(sb, obj) {
		return cache.ObjectName{}, false
	}
	return cache.ObjectName{Namespace: sb.Namespace, Name: sb.Name}, true
}

func (c *Controller) enqueueOwner(obj any) {
	obj = controller.DeletedObject(obj)
	o, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if key, ok := c.ownerOrCandidate(o); ok {
		c.queue.Add(key)
	}
}

// updateChild wakes the owners before and after an update, so an owner
// flip reaches both.
func (c *Controller) updateChild(oldObj, newObj any) {
	o, n := oldObj.(metav1.Object), newObj.(metav1.Object)
	if o.GetResourceVersion() == n.GetResourceVersion() {
		return
	}
	c.enqueueOwner(newObj)
	if metav1.GetControllerOfNoCopy(o) != nil {
		c.enqueueOwner(oldObj)
	}
}

// onSandboxDeleted forgets the Sandbox's state at once and queues it; the
// sync that finds it gone forgets again (delete events can be missed, and
// a Sandbox recreated under the same name must not inherit the old one's
// expectations).
func (c *Controller) onSandboxDeleted(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		return
	}
	c.forget(key.String())
	c.status.Forget(obj)
	c.queue.Add(key)
}

// forget drops everything kept per Sandbox key.
func (c *Controller) forget(key string) {
	c.expectations.Forget(key)
	c.writeBehind.done(key)
	c.idleWarnings.forget(key)
	c.namespaceGoing.forget(key)
}

func (c *Controller) onPodAdded(obj any) {
	pod := obj.(*corev1.Pod)
	if key, ok := c.ownerKey(pod); ok {
		c.expectations.CreationObserved(key.String())
		if pod.DeletionTimestamp != nil {
			c.expectations.DeletionObserved(key.String(), podKey(pod))
		}
	}
	c.enqueueOwner(obj)
}

func (c *Controller) onPodUpdated(oldObj, newObj any) {
	pod := newObj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		if key, ok := c.ownerKey(pod); ok {
			c.expectations.DeletionObserved(key.String(), podKey(pod))
		}
	}
	c.updateChild(oldObj, newObj)
}

func (c *Controller) onPodDeleted(obj any) {
	pod, ok := controller.DeletedObject(obj).(*corev1.Pod)
	if !ok {
		return
	}
	if key, ok := c.ownerKey(pod); ok {
		c.expectations.DeletionObserved(key.String(), podKey(pod))
	}
	c.enqueueOwner(pod)
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// isSandboxChild filters Pod and Service events: those with the name-hash
// label, and orphans offered for adoption.
func isSandboxChild(obj any) bool {
	obj = controller.DeletedObject(obj)
	o, ok := obj.(metav1.Object)
	if !ok {
		return false
	}
	labels := o.GetLabels()
	_, hashed := labels[agentsv1beta1.SandboxNameHashLabel]
	return hashed || labels[agentsv1beta1.AdoptableLabel] == "true"
}

func indexByNameHash(obj any) ([]string, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	if h, ok := o.GetLabels()[agentsv1beta1.SandboxNameHashLabel]; ok {
		return []string{h}, nil
	}
	return nil, nil
}
