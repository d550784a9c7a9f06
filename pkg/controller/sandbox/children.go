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
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// errMultiplePods marks a Sandbox that controls more than one Pod. It is
// reported in status and by one Event, never retried: retrying cannot fix
// it, and picking one Pod could hand a tenant someone else's.
var errMultiplePods = errors.New("multiple pods are controlled by this sandbox")

// reconcileChildren brings PVCs, Pod and Service in line with the spec, in
// that order (a Pod must never start without its volumes), and computes
// status. A PVC error does not stop the Pod and Service steps; all errors
// are joined into the Ready condition and returned, except
// errMultiplePods, which is only reported. sync retries them with backoff
// unless all are refusedErrors.
func (c *Controller) reconcileChildren(ctx context.Context, sb *agentsv1beta1.Sandbox) error {
	refs := c.refManager(sb)
	var errs []error
	pvcCtx, span := tracing.Start(ctx, c.opts.Tracer, "reconcilePVCs")
	pvcErr := c.reconcilePVCs(pvcCtx, refs, sb)
	tracing.End(span, &pvcErr)
	errs = append(errs, pvcErr)

	podCtx, span := tracing.Start(ctx, c.opts.Tracer, "reconcilePod")
	pod, podErr := c.reconcilePod(podCtx, refs, sb)
	tracing.End(span, &podErr)
	multiple := errors.Is(podErr, errMultiplePods)
	if !multiple {
		errs = append(errs, podErr)
	}
	owned := pod != nil && controller.IsControlledByUID(pod, sb)
	if pod != nil {
		sb.Status.LabelSelector = agentsv1beta1.SandboxSelector(sb.Name)
	}
	sb.Status.PodIPs, sb.Status.NodeName = nil, ""
	if owned {
		for _, ip := range pod.Status.PodIPs {
			sb.Status.PodIPs = append(sb.Status.PodIPs, ip.IP)
		}
		sb.Status.NodeName = pod.Spec.NodeName
	}

	svc := serviceState{}
	if !multiple {
		// With two Pods the mapping is ambiguous: leave the Service to an
		// operator rather than point it anywhere.
		var svcErr error
		svc, svcErr = c.reconcileService(ctx, refs, sb)
		errs = append(errs, svcErr)
	}

	childErr := errors.Join(errs...)
	condErr := childErr
	if multiple {
		condErr = podErr
	}
	wasMultiple := readyReason(sb) == agentsv1beta1.SandboxReasonMultiplePods
	var was metav1.Condition
	if ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)); ready != nil {
		was = *ready
	}
	computeConditions(sb, pod, owned, svc, condErr, multiple)
	if multiple && !wasMultiple {
		c.recorder.Eventf(sb, nil, corev1.EventTypeWarning, ReasonMultiplePods, actionReconciling, "%v", podErr)
	}
	if ready := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)); ready.Reason != was.Reason || ready.Message != was.Message {
		// A refused create repeats every refusedRequeue with the same
		// answer: its Event goes with the condition that reports it, once
		// per episode, not once per attempt.
		refused, _ := refusals(childErr)
		for _, r := range refused {
			if !r.terminating {
				c.failedCreateEvent(sb, r.child, r.kind, r.name, r.err)
			}
		}
	}
	return childErr
}
