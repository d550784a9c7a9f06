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

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

const (
	// expiryRecheckFloor bounds how often a Sandbox waiting for its
	// shutdown time is revisited.
	expiryRecheckFloor = 2 * time.Second
	// expiredRequeue runs the teardown pass right after the expired
	// condition is persisted.
	expiredRequeue = time.Millisecond
	// expectationsRecheck revisits a Sandbox whose own writes the informer
	// has not shown yet, in case the awaited event is lost.
	expectationsRecheck = time.Second
)

// Event reasons. MultiplePods is the reference's; the others follow the
// kube-controller-manager vocabulary.
const (
	ReasonMultiplePods     = agentsv1beta1.SandboxReasonMultiplePods
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = controller.ReasonSuccessfulDelete
	ReasonFailedDelete     = controller.ReasonFailedDelete
	ReasonAdopted          = "Adopted"
	ReasonFailedAdopt      = "FailedAdopt"
	ReasonExpired          = agentsv1beta1.SandboxReasonExpired

	actionReconciling = "Reconciling"
)

// sync reconciles one Sandbox. It returns an error only for transient
// failures a retry may fix; permanent ones are reported in status.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (requeueAfter time.Duration, err error) {
	logger := klog.FromContext(ctx)

	cached, err := c.sandboxLister.Sandboxes(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.forget(key.String())
		return requeueAfter, nil
	}
	if err != nil {
		return requeueAfter, err
	}
	ctx, span := c.startSpan(ctx, cached)
	defer tracing.End(span, &err)
	if cached.DeletionTimestamp != nil {
		c.writeBehind.done(key.String())
		// No finalizers: the garbage collector removes the children.
		return requeueAfter, nil
	}
	if c.namespaceGoing.has(key.String(), cached.UID) {
		// Its namespace is being deleted and said so; Ready says why
		// the children are missing, and nothing can be created.
		return requeueAfter, nil
	}
	if !c.expectations.Satisfied(key.String()) {
		adds, dels := c.expectations.Pending(key.String())
		logger.V(4).Info("Waiting for the informer to show our writes", "creates", adds, "deletes", dels)
		requeueAfter = expectationsRecheck
		return requeueAfter, nil
	}

	now := c.opts.Clock.Now()
	var idleLeft time.Duration
	if !isExpired(cached, now) {
		suspended, left, err := c.suspendIfIdle(ctx, cached, now)
		if err != nil || suspended {
			// The suspend patch's own watch event brings the Sandbox
			// back for the ordinary suspend path.
			return requeueAfter, err
		}
		idleLeft = left
	}
	sb := cached.DeepCopy()
	// syncErr is reported in status; retryErr is what the queue retries
	// with backoff, which a child the API server refuses as it is is not.
	var syncErr, retryErr error
	// final: every child error was a refusal by the namespace being
	// deleted; once the status says so, later passes are skipped.
	var final bool
	switch {
	case isExpired(sb, now) && readyReason(sb) != agentsv1beta1.SandboxReasonExpired:
		// Pass one: persist the expiry before tearing anything down, so
		// that whoever reads the Sandbox next knows why it went away.
		markExpired(sb)
		c.recorder.Eventf(sb, nil, "Normal", ReasonExpired, actionReconciling, "Sandbox reached its shutdown time %s", sb.Spec.ShutdownTime.UTC().Format(time.RFC3339))
		requeueAfter = expiredRequeue
	case isExpired(sb, now):
		deleted, err := c.expire(ctx, sb)
		if deleted || err != nil {
			return requeueAfter, err
		}
	default:
		syncErr = c.reconcileChildren(ctx, sb)
		retryErr = syncErr
		requeueAfter = c.writeBehind.remaining(key.String(), c.opts.Clock.Now())
		if refused, only := refusals(syncErr); only {
			retryErr = nil
			// A namespace being deleted takes the Sandbox next: a retry
			// would only find it gone (deleting a namespace of 3000
			// Sandboxes queued 3000 passes a minute later).
			final = finalRefusals(refused)
			if !final && (requeueAfter == 0 || refusedRequeue < requeueAfter) {
				requeueAfter = refusedRequeue
			}
		}
		if idleLeft > 0 && (requeueAfter == 0 || idleLeft < requeueAfter) {
			// The idle deadline's timer: it re-reads the Sandbox, so a
			// later last-activity (whose update the handler dropped)
			// just arms the next one.
			requeueAfter = idleLeft
		}
		if sb.Spec.ShutdownTime != nil {
			now = c.opts.Clock.Now()
			if isExpired(sb, now) {
				markExpired(sb)
				requeueAfter = expiredRequeue
			} else if expiry := max(sb.Spec.ShutdownTime.Sub(now), expiryRecheckFloor); requeueAfter == 0 || expiry < requeueAfter {
				requeueAfter = expiry
			}
		}
	}
	res, err := c.status.Write(ctx, cached, cached.Status, sb.Status, func() controller.StatusHold {
		return c.statusHold(cached, sb, syncErr, now)
	})
	if err != nil {
		return requeueAfter, errors.Join(syncErr, fmt.Errorf("writing sandbox status: %w", err))
	}
	if final {
		c.namespaceGoing.mark(key.String(), cached.UID)
	}
	if res.RequeueAfter > 0 && (requeueAfter == 0 || res.RequeueAfter < requeueAfter) {
		requeueAfter = res.RequeueAfter
	}
	return requeueAfter, retryErr
}

// statusHold is the Sandbox controller's answer to whether a status change
// may wait (controller.StatusWriter):
//   - the very first status, while all it says is that the Pod is starting
//     (Ready=False/DependenciesNotReady, no error), waits up to
//     Opts.FirstStatusDelay (controller.FirstStatusHold);
//   - a change of nodeName alone, before the Sandbox is Ready, waits for
//     the next write (usually the Ready transition): scheduling would
//     otherwise cost a write of its own per Pod.
func (c *Controller) statusHold(old, sb *agentsv1beta1.Sandbox, syncErr error, now time.Time) controller.StatusHold {
	ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
	starting := syncErr == nil && ready != nil && ready.Status == metav1.ConditionFalse &&
		ready.Reason == agentsv1beta1.SandboxReasonDependenciesNotReady
	if h := controller.FirstStatusHold(old, len(old.Status.Conditions) > 0, starting, c.opts.FirstStatusDelay, now); h.Holds() {
		return h
	}
	if onlyNodeNameChanged(&old.Status, &sb.Status) && !isReady(sb) {
		return controller.StatusHold{UntilNextWrite: true}
	}
	return controller.StatusHold{}
}

func isExpired(sb *agentsv1beta1.Sandbox, now time.Time) bool {
	return sb.Spec.ShutdownTime != nil && !now.Before(sb.Spec.ShutdownTime.Time)
}

func readyReason(sb *agentsv1beta1.Sandbox) string {
	if c := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)); c != nil {
		return c.Reason
	}
	return ""
}

func markExpired(sb *agentsv1beta1.Sandbox) {
	meta.RemoveStatusCondition(&sb.Status.Conditions, string(agentsv1beta1.SandboxConditionPodScheduled))
	setCondition(sb, agentsv1beta1.SandboxConditionReady, metav1.ConditionFalse, agentsv1beta1.SandboxReasonExpired, "Sandbox has expired")
}

// expire tears down an expired Sandbox: its owned Pod and Service go, and
// then either the Sandbox itself (Delete) or its live status (Retain).
// PVCs stay until the Sandbox is deleted.
func (c *Controller) expire(ctx context.Context, sb *agentsv1beta1.Sandbox) (deleted bool, err error) {
	logger := klog.FromContext(ctx)
	podName := sb.Annotations[agentsv1beta1.PodNameAnnotation]
	if podName == "" {
		podName = sb.Name
	}
	var errs []error
	if pod, err := c.podLister.Pods(sb.Namespace).Get(podName); err == nil {
		if controller.IsControlledByUID(pod, sb) && pod.DeletionTimestamp == nil {
			errs = append(errs, c.deletePod(ctx, sb, pod))
		} else if !controller.IsControlledByUID(pod, sb) {
			logger.V(2).Info("Leaving a Pod the expired Sandbox does not own", "pod", klog.KObj(pod))
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if svc, err := c.serviceLister.Services(sb.Namespace).Get(sb.Name); err == nil {
		if controller.IsControlledByUID(svc, sb) {
			errs = append(errs, c.deleteService(ctx, sb, svc))
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}

	if sb.Spec.ShutdownPolicy != nil && *sb.Spec.ShutdownPolicy == agentsv1beta1.ShutdownPolicyDelete {
		err := c.sandboxes(sb.Namespace).Delete(ctx, sb.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &sb.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("deleting expired sandbox: %w", err)
		}
		logger.V(2).Info("Deleted expired Sandbox")
		return true, nil
	}
	// Retain: keep the object and its conditions, drop everything live.
	sb.Status = agentsv1beta1.SandboxStatus{Conditions: sb.Status.Conditions}
	markExpired(sb)
	return false, nil
}

func onlyNodeNameChanged(a, b *agentsv1beta1.SandboxStatus) bool {
	if a.NodeName == b.NodeName {
		return false
	}
	x := *b
	x.NodeName = a.NodeName
	return equality.Semantic.DeepEqual(*a, x)
}

func isReady(sb *agentsv1beta1.Sandbox) bool {
	return meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
}

// patchPodNameAnnotation sets (or with value nil, removes) the Sandbox's
// pod-name annotation.
func (c *Controller) patchPodNameAnnotation(ctx context.Context, sb *agentsv1beta1.Sandbox, value *string) error {
	const key = agentsv1beta1.PodNameAnnotation
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: value}}}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = c.sandboxes(sb.Namespace).Patch(ctx, sb.Name, types.MergePatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patching sandbox annotation %s: %w", key, err)
	}
	if value == nil {
		delete(sb.Annotations, key)
	} else {
		if sb.Annotations == nil {
			sb.Annotations = map[string]string{}
		}
		sb.Annotations[key] = *value
	}
	return nil
}
