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

package sandboxclaim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

const (
	// missingRequeue bounds how long a claim whose pool or template is
	// missing waits; the pool and template watches usually wake it first.
	missingRequeue = time.Minute
	// userErrorRequeue bounds how long a claim with a problem only a user
	// can fix waits to be looked at again; the watches of what it depends
	// on wake it first when that changes.
	userErrorRequeue = 10 * time.Minute
)

// Event reasons.
const (
	ReasonSandboxAdopted     = "SandboxAdopted"
	ReasonSandboxProvisioned = "SandboxProvisioned"
)

// claimError is a problem the claim's author must fix; it is reported in
// the Ready condition with its reason, and not retried in a loop.
type claimError struct {
	reason string
	err    error
}

func (e *claimError) Error() string { return e.err.Error() }

func claimErrorf(reason, format string, args ...any) error {
	return &claimError{reason: reason, err: fmt.Errorf(format, args...)}
}

func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (requeue time.Duration, err error) {

	claim, err := c.claimLister.SandboxClaims(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// Deleted: the delete event freed its state, unless that event
		// was missed (a lost watch, a restarted informer).
		c.state.forgetKey(key)
		c.traces.end(key, eventDeleted)
		return requeue, nil
	}
	if err != nil {
		return requeue, err
	}
	if claim.DeletionTimestamp != nil {
		// The garbage collector removes the Sandbox.
		c.state.forget(claim.UID)
		c.traces.end(key, eventDeleted)
		return requeue, nil
	}
	ctx, span := c.traces.start(ctx, key, claim)
	defer tracing.End(span, &err)

	now := c.opts.Clock.Now()
	if at, ok := expiresAt(claim, &claim.Status); ok && !now.Before(at) {
		requeue, err = c.expire(ctx, claim)
		return requeue, err
	}

	sb, wait, err := c.resolve(ctx, claim)
	c.traces.sandbox(ctx, key, sb)
	if wait > 0 {
		// Our own write is not in the cache yet, or members are starting:
		// come back shortly (the awaited events usually come first), and
		// write no status meanwhile.
		return wait, nil
	}
	// A problem never hides a binding: sb is still reported when there is
	// one (errors from a bound claim's metadata sync).
	var ce *claimError
	switch {
	case errors.Is(err, errNamespaceTerminating):
		return 0, nil
	case errors.As(err, &ce):
		// Only the claim's author (or the template's, the pool's, the
		// conflicting Sandbox's) can fix it: a condition, an Event when it
		// is new, and no error, so the queue does not retry it with
		// backoff. The claim, pool, template and Sandbox watches wake it
		// when something changes; the requeue is only a backstop.
		switch ce.reason {
		case extv1beta1.ClaimReasonWarmPoolNotFound, extv1beta1.ClaimReasonTemplateNotFound:
			requeue = missingRequeue
		case extv1beta1.ClaimReasonSandboxCreatePending:
			// Not the user's: the cache lags the create. The claim's own
			// Sandbox wakes it when it shows up; one that is someone
			// else's does not, so look again once the binding marker has
			// lapsed and the name clash can be told.
			requeue = bindingLag
		default:
			requeue = userErrorRequeue
		}
		_, res, err := c.writeStatus(ctx, claim, sb, ce.reason, ce.Error(), nil)
		if res.Wrote && ce.reason != extv1beta1.ClaimReasonSandboxCreatePending {
			c.warn(claim, ce.reason, "Binding", ce.Error())
		}
		return requeue, err
	case err != nil:
		if _, _, werr := c.writeStatus(ctx, claim, sb, extv1beta1.ClaimReasonReconcilerError, "Error seen: "+err.Error(), nil); werr != nil {
			return requeue, errors.Join(err, werr)
		}
		return requeue, err
	}
	status, res, err := c.writeStatus(ctx, claim, sb, "", "", func(base extv1beta1.SandboxClaimStatus) controller.StatusHold {
		return c.firstStatusHold(claim, sb, base)
	})
	if err != nil {
		return requeue, err
	}
	if res.RequeueAfter > 0 {
		return res.RequeueAfter, nil
	}
	if !meta.IsStatusConditionTrue(claim.Status.Conditions, "Ready") && meta.IsStatusConditionTrue(status.Conditions, "Ready") {
		// A pass running on a stale cached claim sees the transition again;
		// it is counted once.
		if seen, counted := c.state.countReady(claim); !counted {
			c.opts.ClaimMetrics.firstReady(claim, sb, seen, c.opts.Clock.Now())
		}
		c.traces.end(key, eventReady)
	}
	// The status just written may arm the TTL (a freshly mirrored
	// Finished); come back when the claim expires.
	if at, ok := expiresAt(claim, status); ok {
		requeue = max(at.Sub(c.opts.Clock.Now()), expiredRequeue)
	}
	return requeue, nil
}

// resolve finds the claim's Sandbox, taking over a warm one or creating
// one when it has none. A wait (the second result) > 0 means: come back
// after it without writing anything, because the claim's own earlier
// write is not in the cache yet (warmWaitStep), or because pool members
// are about to get their IPs (the next step of warmWait, never past it).
func (c *Controller) resolve(ctx context.Context, claim *extv1beta1.SandboxClaim) (*agentsv1beta1.Sandbox, time.Duration, error) {
	// The controller reference is the binding, once it is shown to be
	// the claim's own (bindings).
	owned, others, err := c.bindings(claim)
	if err != nil {
		return nil, 0, err
	}
	for _, sb := range others {
		c.reportUntrusted(ctx, claim, sb)
	}
	switch {
	case len(owned) > 1:
		// Impossible by construction; fail closed rather than pick.
		return nil, 0, fmt.Errorf("claim controls %d sandboxes", len(owned))
	case len(owned) == 1:
		c.state.settled(claim.UID)
		sb, err := c.syncMetadata(ctx, claim, owned[0])
		return sb, 0, err
	}
	pending, lapsed := c.state.pending(claim.UID)
	if pending {
		return nil, warmWaitStep, nil
	}
	if lapsed || claim.Status.SandboxStatus.Name != "" {
		// The claim had a Sandbox that the cache does not show: deleted,
		// or the informer lags. Taking or creating another on a lagging
		// cache would bind the claim twice, so ask the API server.
		sb, err := c.liveBinding(ctx, claim)
		if err != nil {
			return nil, 0, err
		}
		if sb != nil {
			klog.FromContext(ctx).V(2).Info("The claim's Sandbox exists but the informer does not show it yet; waiting", "sandbox", klog.KObj(sb))
			c.state.remember(claim)
			return nil, warmWaitStep, nil
		}
	}

	// A Sandbox named like the claim that it does not control is someone
	// else's: never take it, never shadow it.
	if sb, err := c.sandboxLister.Sandboxes(claim.Namespace).Get(claim.Name); err == nil {
		if slices.ContainsFunc(others, func(o *agentsv1beta1.Sandbox) bool { return o.UID == sb.UID }) {
			// Made to look like the claim's own; its changes wake the
			// claim, so there is nothing to retry meanwhile.
			return nil, 0, claimErrorf(extv1beta1.ClaimReasonReconcilerError,
				"sandbox %s names this claim as its controller but was not created by it and does not run its template; delete it or use a different claim name", sb.Name)
		}
		// Someone else's (another claim's, a pool's, nobody's): the
		// name is taken until its owner deletes it, whose delete event
		// wakes the claim.
		return nil, 0, claimErrorf(extv1beta1.ClaimReasonReconcilerError,
			"sandbox %s exists and is not controlled by this claim; use a different claim name", sb.Name)
	}

	if err := validateMetadata(claim, c.opts.AllowedLabelDomains); err != nil {
		return nil, 0, err
	}
	pool, tmpl, err := c.poolAndTemplate(claim)
	if err != nil {
		return nil, 0, err
	}
	env, cold, err := warmEnv(claim, tmpl)
	if err != nil {
		return nil, 0, err
	}
	if cold == "" {
		sb, wait, err := c.adoptWarm(ctx, claim, pool, tmpl, env)
		if err != nil || sb != nil {
			return sb, 0, err
		}
		if wait > 0 {
			return nil, wait, nil // come back when a member may have its IP
		}
	}
	sb, err := c.createCold(ctx, claim, pool, tmpl, cold)
	return sb, 0, err
}

func (c *Controller) poolAndTemplate(claim *extv1beta1.SandboxClaim) (*extv1beta1.SandboxWarmPool, *extv1beta1.SandboxTemplate, error) {
	pool, err := c.poolLister.SandboxWarmPools(claim.Namespace).Get(claim.Spec.WarmPoolRef.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, claimErrorf(extv1beta1.ClaimReasonWarmPoolNotFound, "SandboxWarmPool %q not found in namespace %s", claim.Spec.WarmPoolRef.Name, claim.Namespace)
	}
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := c.templateLister.SandboxTemplates(claim.Namespace).Get(pool.Spec.TemplateRef.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil, claimErrorf(extv1beta1.ClaimReasonTemplateNotFound, "SandboxTemplate %q of pool %s not found", pool.Spec.TemplateRef.Name, pool.Name)
	}
	return pool, tmpl, err
}

// writeStatus mirrors the bound Sandbox (or the reason there is none) into
// the claim's status, only when it changed. No precondition: the binding
// lives in the Sandbox's controller reference, so status is derived and
// this controller is its only writer (controller.StatusWriter); hold, if
// not nil, may keep the change back; it is given the status the pass
// started from (StatusWriter.Base).
func (c *Controller) writeStatus(ctx context.Context, claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox, reason, message string,
	hold func(base extv1beta1.SandboxClaimStatus) controller.StatusHold) (*extv1beta1.SandboxClaimStatus, controller.StatusWriteResult, error) {
	// What this controller last wrote, while the cache lags behind it.
	base := c.status.Base(claim, claim.Status)
	status := base.DeepCopy()
	setNotReady := func(r, m string) {
		// The transition time comes from the controller's clock (used
		// only when the status flips), not from SetStatusCondition's
		// wall clock, so a fake clock makes status writes reproducible.
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: string(agentsv1beta1.SandboxConditionReady), Status: metav1.ConditionFalse, Reason: r, Message: m, ObservedGeneration: claim.Generation,
			LastTransitionTime: metav1.NewTime(c.opts.Clock.Now()),
		})
	}
	switch {
	case sb == nil:
		status.SandboxStatus = extv1beta1.SandboxStatus{}
		setNotReady(reason, message)
		if reason != extv1beta1.ClaimExpiredReason {
			// An expired claim keeps the Finished it mirrored.
			meta.RemoveStatusCondition(&status.Conditions, string(agentsv1beta1.SandboxConditionFinished))
		}
	case reason != "":
		// Expiry recorded while the Sandbox is still there.
		status.SandboxStatus = extv1beta1.SandboxStatus{Name: sb.Name, PodIPs: sb.Status.PodIPs}
		setNotReady(reason, message)
	default:
		status.SandboxStatus = extv1beta1.SandboxStatus{Name: sb.Name, PodIPs: sb.Status.PodIPs}
		ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		switch {
		case ready != nil && ready.Reason == agentsv1beta1.SandboxReasonExpired:
			setNotReady(extv1beta1.ClaimReasonSandboxExpired, "Underlying Sandbox resource has expired independently of the Claim.")
		case sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended:
			setNotReady(extv1beta1.ClaimReasonSandboxSuspended, suspendedMessage(sb))
		case ready != nil:
			mirrored := *ready
			mirrored.ObservedGeneration = claim.Generation
			meta.SetStatusCondition(&status.Conditions, mirrored)
		default:
			setNotReady(extv1beta1.ClaimReasonSandboxNotReady, "Sandbox is not ready")
		}
		if finished := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionFinished)); finished != nil {
			mirrored := *finished
			mirrored.ObservedGeneration = claim.Generation
			meta.SetStatusCondition(&status.Conditions, mirrored)
		} else {
			meta.RemoveStatusCondition(&status.Conditions, string(agentsv1beta1.SandboxConditionFinished))
		}
	}
	c.setWarmStart(&base, sb, claim, status)
	var holdBase func() controller.StatusHold
	if hold != nil {
		holdBase = func() controller.StatusHold { return hold(base) }
	}
	res, err := c.status.Write(ctx, claim, base, *status, holdBase)
	if err != nil {
		return status, res, fmt.Errorf("writing claim status: %w", err)
	}
	return status, res, nil
}

func (c *Controller) event(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox, reason, action, format string, args ...any) {
	if c.opts.DisableEvents {
		return
	}
	c.recorder.Eventf(claim, sb, corev1.EventTypeNormal, reason, action, format, args...)
}

// warn is a Warning Event on the claim: a problem its author must fix.
func (c *Controller) warn(claim *extv1beta1.SandboxClaim, reason, action, note string) {
	if c.opts.DisableEvents {
		return
	}
	c.recorder.Eventf(claim, nil, corev1.EventTypeWarning, reason, action, "%s", note)
}

// eventf is event without a related object.
func (c *Controller) eventf(claim *extv1beta1.SandboxClaim, reason, action, format string, args ...any) {
	if c.opts.DisableEvents {
		return
	}
	c.recorder.Eventf(claim, nil, corev1.EventTypeNormal, reason, action, format, args...)
}

// firstStatusHold holds a claim's very first status while its Sandbox is
// merely starting (no status yet, or Ready=False/DependenciesNotReady), as
// the Sandbox controller holds the Sandbox's (controller.FirstStatusHold):
// the Sandbox's Ready event usually comes first and one write then says it
// all. The binding itself is the Sandbox's controller reference, so nothing
// is lost meanwhile; problems are written at once.
func (c *Controller) firstStatusHold(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox, base extv1beta1.SandboxClaimStatus) controller.StatusHold {
	if sb == nil {
		return controller.StatusHold{}
	}
	ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
	starting := ready == nil || (ready.Status == metav1.ConditionFalse && ready.Reason == agentsv1beta1.SandboxReasonDependenciesNotReady)
	starting = starting && meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionFinished)) == nil
	return controller.FirstStatusHold(claim, len(base.Conditions) > 0, starting, c.opts.FirstStatusDelay, c.opts.Clock.Now())
}

// suspendedMessage says why the claim's Sandbox is suspended and how it
// comes back: the next request through the router when it may wake, else
// its operatingMode.
func suspendedMessage(sb *agentsv1beta1.Sandbox) string {
	resume := fmt.Sprintf("set spec.operatingMode to Running on Sandbox %s to resume it", sb.Name)
	if sb.Annotations[agentsv1beta1.WakeOnRequestAnnotation] == agentsv1beta1.WakeOnRequestEnabled {
		resume = "the next request through the router resumes it"
	}
	if _, idle := sb.Annotations[agentsv1beta1.IdleSuspendedAtAnnotation]; idle {
		if w, ok, _ := agentsv1beta1.IdleTimeout(sb.Annotations); ok {
			return fmt.Sprintf("Sandbox was suspended after %s without requests; %s", w, resume)
		}
		return "Sandbox was suspended for lack of requests; " + resume
	}
	return "Sandbox is suspended (spec.operatingMode: Suspended); " + resume
}
