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
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Idle auto-suspend (docs/design/idle.md, "Who suspends"): the routers
// record activity in the last-activity annotation at most once per idle
// window W; this controller suspends an opted-in Sandbox at a + W + grace.

const (
	// DefaultIdleSuspendGrace covers the routers' write latency and clock
	// skew (--idle-suspend-grace).
	DefaultIdleSuspendGrace = 30 * time.Second

	// ReasonIdleSuspended (Normal): the Sandbox was suspended for lack of
	// requests.
	ReasonIdleSuspended = "IdleSuspended"
	// ReasonInvalidIdleTimeout (Warning, once per value): the idle-timeout
	// annotation is ignored.
	ReasonInvalidIdleTimeout = "InvalidIdleTimeout"
)

// idleWarnings remembers, per Sandbox key, the invalid idle-timeout value
// already reported, so each bad value gets one Warning Event, not one per
// sync.
type idleWarnings struct {
	mu     sync.Mutex
	warned map[string]string
}

// first reports whether value is new for key, and records it.
func (w *idleWarnings) first(key, value string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.warned[key]; ok && v == value {
		return false
	}
	if w.warned == nil {
		w.warned = map[string]string{}
	}
	w.warned[key] = value
	return true
}

func (w *idleWarnings) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.warned, key)
}

// idleDeadline returns when sb becomes idle: a + W + grace. ok is false
// when sb is not subject to idle suspend: not opted in (or an invalid
// window, reported once), not Running, a warm pool member (unclaimed
// members get no traffic), or neither a usable last-activity nor a Ready
// transition to count from.
func (c *Controller) idleDeadline(sb *agentsv1beta1.Sandbox, now time.Time) (deadline time.Time, w time.Duration, ok bool) {
	if sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended {
		return time.Time{}, 0, false
	}
	if _, member := sb.Labels[agentsv1beta1.WarmPoolSandboxLabel]; member {
		return time.Time{}, 0, false
	}
	w, opted, err := agentsv1beta1.IdleTimeout(sb.Annotations)
	if err != nil {
		if c.idleWarnings.first(sb.Namespace+"/"+sb.Name, sb.Annotations[agentsv1beta1.IdleTimeoutAnnotation]) {
			c.recorder.Eventf(sb, nil, corev1.EventTypeWarning, ReasonInvalidIdleTimeout, actionReconciling, "Ignoring %v", err)
		}
		return time.Time{}, 0, false
	}
	if !opted {
		return time.Time{}, 0, false
	}
	grace := c.opts.IdleSuspendGrace
	a, found := agentsv1beta1.ParseLastActivity(sb.Annotations)
	// A value beyond now + grace is no clock skew but a forged or broken
	// clock: it must not pin the sandbox awake.
	if !found || a.After(now.Add(grace)) {
		ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		if ready == nil || ready.Status != metav1.ConditionTrue {
			return time.Time{}, 0, false
		}
		a = ready.LastTransitionTime.Time
	}
	return a.Add(w + grace), w, true
}

// suspendIfIdle suspends sb when its idle deadline has passed, with one
// merge patch conditional on the resourceVersion judged: a router's
// activity write that lands first makes it fail with a conflict, and the
// Sandbox is judged again. It returns suspended=true when the patch
// landed (the watch event of that write runs the ordinary suspend path),
// else the time left until the deadline (0: no deadline).
func (c *Controller) suspendIfIdle(ctx context.Context, sb *agentsv1beta1.Sandbox, now time.Time) (suspended bool, left time.Duration, err error) {
	deadline, w, ok := c.idleDeadline(sb, now)
	if !ok {
		return false, 0, nil
	}
	if now.Before(deadline) {
		return false, deadline.Sub(now), nil
	}
	patch := map[string]any{
		"metadata": map[string]any{
			"resourceVersion": sb.ResourceVersion,
			"annotations": map[string]any{
				agentsv1beta1.IdleSuspendedAtAnnotation: agentsv1beta1.FormatActivityTime(now),
			},
		},
		"spec": map[string]any{"operatingMode": agentsv1beta1.SandboxOperatingModeSuspended},
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return false, 0, err
	}
	if _, err := c.sandboxes(sb.Namespace).Patch(ctx, sb.Name, types.MergePatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsNotFound(err) {
			return false, 0, nil
		}
		// A conflict is retried with backoff from the informer's newer
		// copy; NotFound means the Sandbox went meanwhile.
		return false, 0, fmt.Errorf("suspending idle sandbox: %w", err)
	}
	klog.FromContext(ctx).V(2).Info("Suspended idle Sandbox", "idleTimeout", w)
	c.recorder.Eventf(sb, nil, corev1.EventTypeNormal, ReasonIdleSuspended, actionReconciling,
		"Suspended after %s without requests through the router", w)
	return true, 0, nil
}
