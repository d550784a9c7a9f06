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
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// expiredRequeue runs the second expiry pass right after the first.
const expiredRequeue = time.Millisecond

// ReasonClaimExpired is the Event reason of both expiry passes.
const ReasonClaimExpired = extv1beta1.ClaimExpiredReason

// expiresAt is when the claim expires: the earlier of spec.lifecycle's
// shutdownTime and ttlSecondsAfterFinished after its mirrored Finished
// condition turned True (the Pod's own finish time, not when we saw it).
func expiresAt(claim *extv1beta1.SandboxClaim, status *extv1beta1.SandboxClaimStatus) (time.Time, bool) {
	lc := claim.Spec.Lifecycle
	if lc == nil {
		return time.Time{}, false
	}
	var at time.Time
	if lc.ShutdownTime != nil {
		at = lc.ShutdownTime.Time
	}
	if lc.TTLSecondsAfterFinished != nil {
		if f := meta.FindStatusCondition(status.Conditions, string(agentsv1beta1.SandboxConditionFinished)); f != nil && f.Status == metav1.ConditionTrue {
			ttlAt := f.LastTransitionTime.Add(time.Duration(*lc.TTLSecondsAfterFinished) * time.Second)
			if at.IsZero() || ttlAt.Before(at) {
				at = ttlAt
			}
		}
	}
	return at, !at.IsZero()
}

func isMarkedExpired(claim *extv1beta1.SandboxClaim) bool {
	r := meta.FindStatusCondition(claim.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
	return r != nil && r.Reason == extv1beta1.ClaimExpiredReason
}

// expire handles an expired claim in two passes, so the expiry is
// recorded before anything is deleted: first Ready=False/ClaimExpired,
// then the shutdown policy. Delete removes the claim (its Sandbox follows
// by garbage collection), DeleteForeground too but the claim lingers until
// the Sandbox and Pod are gone, Retain deletes the Sandbox and keeps the
// claim.
func (c *Controller) expire(ctx context.Context, claim *extv1beta1.SandboxClaim) (requeue time.Duration, err error) {
	logger := klog.FromContext(ctx)
	if !isMarkedExpired(claim) {
		c.eventf(claim, ReasonClaimExpired, "Claim Expired", "Claim expired")
		_, _, err := c.writeStatus(ctx, claim, c.ownedSandbox(claim), extv1beta1.ClaimExpiredReason, "Claim expired. Sandbox cleanup initiated.", nil)
		return expiredRequeue, err
	}
	policy := claim.Spec.Lifecycle.ShutdownPolicy
	switch policy {
	case extv1beta1.ShutdownPolicyDelete, extv1beta1.ShutdownPolicyDeleteForeground:
		c.eventf(claim, ReasonClaimExpired, "Deleting", "Deleting Claim (ShutdownPolicy=%s)", policy)
		propagation := metav1.DeletePropagationBackground
		if policy == extv1beta1.ShutdownPolicyDeleteForeground {
			propagation = metav1.DeletePropagationForeground
		}
		err := c.client.ExtensionsV1beta1().SandboxClaims(claim.Namespace).Delete(ctx, claim.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &claim.UID},
			PropagationPolicy: &propagation,
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("deleting expired claim: %w", err)
		}
		logger.V(2).Info("Deleted expired claim", "policy", policy)
		return 0, nil
	}
	// Retain: the Sandbox goes, the claim stays to say so.
	sb := c.ownedSandbox(claim)
	if sb != nil && sb.DeletionTimestamp == nil {
		err := c.client.AgentsV1beta1().Sandboxes(sb.Namespace).Delete(ctx, sb.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &sb.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("deleting the expired claim's sandbox: %w", err)
		}
		logger.V(2).Info("Deleted the expired claim's Sandbox", "sandbox", klog.KObj(sb))
	}
	_, _, err = c.writeStatus(ctx, claim, nil, extv1beta1.ClaimExpiredReason, "Claim expired. Sandbox deleted (ShutdownPolicy=Retain).", nil)
	return 0, err
}

// ownedSandbox is the Sandbox the claim controls, from the cache.
func (c *Controller) ownedSandbox(claim *extv1beta1.SandboxClaim) *agentsv1beta1.Sandbox {
	own, _, err := c.bindings(claim)
	if err != nil || len(own) == 0 {
		return nil
	}
	return own[0]
}
