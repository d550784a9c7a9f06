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

// Package sandboxtemplate manages each SandboxTemplate's one shared
// NetworkPolicy, "<template>-network-policy": the secure default unless
// the template gives its own rules, none when the template is Unmanaged.
// It also stamps the template with its own name hash, the label value the
// policy selects Pods by.
package sandboxtemplate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"go.opentelemetry.io/otel/trace"

	agentsscheme "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	extinformers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions/extensions/v1beta1"
	networkinginformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions/networking/v1"
	listers "github.com/agentsandbox/agent-sandbox/generated/listers/extensions/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/agentsclient"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

const (
	// Name names the workqueue and the controller label of its metrics.
	Name = "sandboxtemplate"
	// FieldManager is the field manager of every write and the reporting
	// controller of every Event.
	FieldManager = "sandboxtemplate-controller"
)

var templateGroupKind = extv1beta1.SandboxTemplateGroupVersionKind.GroupKind()

// Event reasons.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonSuccessfulUpdate = "SuccessfulUpdate"
	ReasonSuccessfulDelete = controller.ReasonSuccessfulDelete
	ReasonFailedCreate     = "FailedCreate"
	ReasonFailedUpdate     = "FailedUpdate"
	ReasonFailedDelete     = controller.ReasonFailedDelete
	// ReasonPolicyConflict: a NetworkPolicy with the template's policy name
	// exists and belongs to someone else.
	ReasonPolicyConflict = "NetworkPolicyConflict"
)

// Options configure a Controller.
type Options struct {
	Clock   clock.WithTicker
	Metrics *metrics.ReconcileMetrics
	// EventMetrics counts the controller's Event writes; nil counts nothing.
	EventMetrics *metrics.EventMetrics
	// Tracer, when not nil, traces each reconcile (--enable-tracing).
	Tracer trace.Tracer
}

// Controller reconciles SandboxTemplates.
type Controller struct {
	kube   kubeclient.Interface
	client agentsclient.Interface

	templateLister listers.SandboxTemplateLister
	policyLister   networkinglisters.NetworkPolicyLister
	synced         []cache.InformerSynced

	queue    controller.Queue
	events   *eventsink.Sink
	recorder eventsink.EventRecorder
	clock    clock.WithTicker
	metrics  *metrics.ReconcileMetrics
	tracer   trace.Tracer

	// conflicts holds the policy conflicts already reported; its only
	// state besides the workqueue.
	conflicts conflicts
}

// NewController builds the controller and registers its event handlers.
func NewController(ctx context.Context, kube kubeclient.Interface, client agentsclient.Interface,
	templateInformer extinformers.SandboxTemplateInformer, policyInformer networkinginformers.NetworkPolicyInformer,
	opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	sink, recorder, err := controller.NewEventRecorder(ctx, kube, FieldManager, opts.EventMetrics, agentsscheme.AddToScheme)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		kube:           kube,
		client:         client,
		templateLister: templateInformer.Lister(),
		policyLister:   policyInformer.Lister(),
		queue:          controller.NewQueue(Name, opts.Clock),
		events:         sink,
		recorder:       recorder,
		clock:          opts.Clock,
		metrics:        opts.Metrics,
		tracer:         opts.Tracer,
	}
	handlerOpts := cache.HandlerOptions{Logger: &logger}
	templateHandler := controller.EnqueueSelf(c.queue)
	templateHandler.DeleteFunc = c.templateDeleted
	reg, err := templateInformer.Informer().AddEventHandlerWithOptions(templateHandler, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = policyInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueuePolicyTemplates,
		UpdateFunc: func(oldObj, newObj any) {
			c.enqueuePolicyTemplates(oldObj)
			c.enqueuePolicyTemplates(newObj)
		},
		DeleteFunc: c.enqueuePolicyTemplates,
	}, handlerOpts)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, reg.HasSynced)
	return c, nil
}

// Run syncs templates with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	w := controller.Workers{Name: Name, KeyName: "sandboxTemplate", Queue: c.queue, Events: c.events,
		Synced: c.synced, Metrics: c.metrics, Clock: c.clock, Sync: c.sync}
	w.Run(ctx, workers)
}

// templateDeleted forgets the template's reported conflict and queues it.
// The sync that finds it gone forgets too; this covers a delete and a
// re-create coalesced into one pass.
func (c *Controller) templateDeleted(obj any) {
	if key, err := cache.DeletionHandlingObjectToName(obj); err == nil {
		c.conflicts.clear(key)
	}
	controller.EnqueueKey(c.queue, obj)
}

// enqueuePolicyTemplates wakes the template controlling a NetworkPolicy,
// so a policy edited or deleted by hand is put back, and the template
// whose policy name it takes, so a template in conflict with someone
// else's policy is re-examined when that policy changes or goes (the
// conflict itself is never retried).
func (c *Controller) enqueuePolicyTemplates(obj any) {
	obj = controller.DeletedObject(obj)
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return
	}
	if ref := controller.ControllerOfKind(np, templateGroupKind); ref != nil {
		c.queue.Add(cache.ObjectName{Namespace: np.Namespace, Name: ref.Name})
	}
	if name, ok := strings.CutSuffix(np.Name, policyNameSuffix); ok && name != "" {
		// Usually the same key as above: the queue holds it once.
		c.queue.Add(cache.ObjectName{Namespace: np.Namespace, Name: name})
	}
}

func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (requeue time.Duration, err error) {
	logger := klog.FromContext(ctx)
	ctx, span := tracing.StartObject(ctx, c.tracer, "ReconcileSandboxTemplate", "sandboxtemplate", key.Namespace, key.Name, "")
	defer tracing.End(span, &err)

	tmpl, err := c.templateLister.SandboxTemplates(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.conflicts.clear(key)
		return requeue, nil
	}
	if err != nil {
		return requeue, err
	}
	if tmpl.DeletionTimestamp != nil {
		// The garbage collector removes the policy.
		c.conflicts.clear(key)
		return requeue, nil
	}
	if err := c.stampNameHash(ctx, tmpl); err != nil {
		return requeue, err
	}

	name := PolicyName(tmpl.Name)
	existing, err := c.policyLister.NetworkPolicies(tmpl.Namespace).Get(name)
	if apierrors.IsNotFound(err) {
		existing, err = nil, nil
	}
	if err != nil {
		return requeue, err
	}
	owned := existing != nil && controller.IsControlledByUID(existing, tmpl)
	if existing == nil || owned || tmpl.Spec.NetworkPolicyManagement == extv1beta1.NetworkPolicyManagementUnmanaged {
		c.conflicts.clear(key)
	}

	if tmpl.Spec.NetworkPolicyManagement == extv1beta1.NetworkPolicyManagementUnmanaged {
		if owned {
			return requeue, c.deletePolicy(ctx, tmpl, existing)
		}
		if existing != nil {
			logger.V(2).Info("Leaving a NetworkPolicy this Unmanaged template does not own", "networkPolicy", klog.KObj(existing))
		}
		return requeue, nil
	}

	desired := DesiredPolicySpec(tmpl)
	switch {
	case existing == nil:
		return requeue, c.createPolicy(ctx, tmpl, name, desired)
	case !owned:
		// Only a user can settle this (delete or rename the policy, or
		// make the template Unmanaged), so it is reported and not
		// retried: the policy's events and the template's edits wake
		// this template again.
		if c.conflicts.report(key, conflict{template: tmpl.UID, policy: existing.UID}) {
			logger.Info("NetworkPolicy under the template's policy name is not controlled by the template; leaving it alone",
				"networkPolicy", klog.KObj(existing), "controller", metav1.GetControllerOfNoCopy(existing))
			c.recorder.Eventf(tmpl, existing, corev1.EventTypeWarning, ReasonPolicyConflict, "Reconciling",
				"NetworkPolicy %s exists and is not controlled by this template; refusing to change it", name)
		}
		return requeue, nil
	case equality.Semantic.DeepEqual(existing.Spec, desired):
		return requeue, nil
	}
	updated := existing.DeepCopy()
	updated.Spec = desired
	if _, err := c.kube.NetworkingV1().NetworkPolicies(tmpl.Namespace).Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		c.recorder.Eventf(tmpl, existing, corev1.EventTypeWarning, ReasonFailedUpdate, "Update", "Failed to update NetworkPolicy %s: %v", name, err)
		return requeue, fmt.Errorf("updating networkpolicy %s: %w", name, err)
	}
	logger.V(2).Info("Updated NetworkPolicy", "networkPolicy", klog.KObj(existing))
	c.recorder.Eventf(tmpl, existing, corev1.EventTypeNormal, ReasonSuccessfulUpdate, "Update", "Updated NetworkPolicy %s", name)
	return requeue, nil
}

// stampNameHash puts the template's own name hash on it, so clients can
// find the policy's pod selector value on the template.
func (c *Controller) stampNameHash(ctx context.Context, tmpl *extv1beta1.SandboxTemplate) error {
	hash := agentsv1beta1.NameHash(tmpl.Name)
	if tmpl.Labels[agentsv1beta1.SandboxTemplateRefHashLabel] == hash {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
		agentsv1beta1.SandboxTemplateRefHashLabel: hash,
	}}})
	if err != nil {
		return err
	}
	_, err = c.client.ExtensionsV1beta1().SandboxTemplates(tmpl.Namespace).Patch(ctx, tmpl.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("labelling template: %w", err)
	}
	return nil
}

func (c *Controller) createPolicy(ctx context.Context, tmpl *extv1beta1.SandboxTemplate, name string, spec networkingv1.NetworkPolicySpec) error {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       tmpl.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(tmpl, extv1beta1.SandboxTemplateGroupVersionKind)},
		},
		Spec: spec,
	}
	_, err := c.kube.NetworkingV1().NetworkPolicies(tmpl.Namespace).Create(ctx, np, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("networkpolicy %s already exists; waiting for the cache", name)
	}
	if err != nil {
		c.recorder.Eventf(tmpl, np, corev1.EventTypeWarning, ReasonFailedCreate, "Create", "Failed to create NetworkPolicy %s: %v", name, err)
		return fmt.Errorf("creating networkpolicy %s: %w", name, err)
	}
	klog.FromContext(ctx).V(2).Info("Created NetworkPolicy", "networkPolicy", klog.KObj(np))
	c.recorder.Eventf(tmpl, np, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Create", "Created NetworkPolicy %s", name)
	return nil
}

func (c *Controller) deletePolicy(ctx context.Context, tmpl *extv1beta1.SandboxTemplate, np *networkingv1.NetworkPolicy) error {
	return controller.DeleteChild(ctx, c.recorder, tmpl, np, "NetworkPolicy", "the template is Unmanaged",
		c.kube.NetworkingV1().NetworkPolicies(np.Namespace).Delete)
}
