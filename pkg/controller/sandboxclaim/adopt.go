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
	"cmp"
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const (
	// maxAdoptAttempts bounds how many candidates one sync tries when
	// others win them first.
	maxAdoptAttempts = 5
	// warmWait is how long after its creation a claim waits for pool
	// members that are starting (no Pod IP yet) before going cold, in
	// steps of warmWaitStep.
	warmWait     = 2 * time.Second
	warmWaitStep = 500 * time.Millisecond
)

// poolLabels are the member labels a Sandbox loses when a claim takes it.
var poolLabels = []string{
	agentsv1beta1.WarmPoolSandboxLabel,
	agentsv1beta1.SandboxTemplateHashLabel,
	agentsv1beta1.SandboxPodTemplateHashLabel,
}

// candidate returns the pool's member a claim should take next, or nil.
// A member may be taken when it is controlled by that pool (by group, kind
// and UID; an unowned Sandbox with forged labels is never taken), labelled
// with the template's hash, in the pool's namespace, not being deleted,
// passing the takeover check (takeable), and has a Pod IP; members in
// tried (lost earlier in this sync) or reserved by another claim are left
// out. Of those it picks the first in candidateOrder: Ready first, then
// from the node with most of them (draining it), then oldest. starting
// counts the takeable members still waiting for their IP.
//
// One claim takes one member, so this is a linear pass for the least
// element and not a sort: with a pool of 1000 the sort was a fifth of the
// controller's CPU at 10 claims/s.
func (c *Controller) candidate(pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, tried map[types.UID]bool) (best *agentsv1beta1.Sandbox, starting int, err error) {
	objs, err := c.sandboxIndexer.ByIndex(controller.WarmPoolMemberIndex, pool.Namespace+"/"+agentsv1beta1.NameHash(pool.Name))
	if err != nil {
		return nil, 0, err
	}
	recreate := pool.Spec.UpdateStrategy != nil && pool.Spec.UpdateStrategy.Type == extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType
	checker := sandboxpolicy.NewStalenessChecker(tmpl, c.opts.SecureDefaults)
	templateHash := agentsv1beta1.NameHash(tmpl.Name)
	var eligible []*agentsv1beta1.Sandbox
	perNode := map[string]int{}
	for _, o := range objs {
		sb := o.(*agentsv1beta1.Sandbox)
		ref := controller.ControllerOfKind(sb, poolGroupKind)
		if ref == nil || ref.UID != pool.UID || sb.Namespace != pool.Namespace || sb.DeletionTimestamp != nil ||
			sb.Labels[agentsv1beta1.SandboxTemplateRefHashLabel] != templateHash {
			continue
		}
		if !c.takeable(pool, checker, recreate, sb) {
			continue
		}
		if len(sb.Status.PodIPs) == 0 {
			starting++
			continue
		}
		if tried[sb.UID] || c.state.isReserved(sb.UID) {
			continue
		}
		eligible = append(eligible, sb)
		perNode[sb.Status.NodeName]++
	}
	var bestReady bool
	for _, sb := range eligible {
		ready := meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		if best == nil || candidateOrder(sb, best, ready, bestReady, perNode) < 0 {
			best, bestReady = sb, ready
		}
	}
	return best, starting, nil
}

// candidateOrder orders two candidates a and b (aReady, bReady: their Ready
// conditions): Ready first, then the node with more candidates (perNode),
// then the older, then by name, so that the order is total.
func candidateOrder(a, b *agentsv1beta1.Sandbox, aReady, bReady bool, perNode map[string]int) int {
	if aReady != bReady {
		if aReady {
			return -1
		}
		return 1
	}
	if d := cmp.Compare(perNode[b.Status.NodeName], perNode[a.Status.NodeName]); d != 0 {
		return d
	}
	if d := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); d != 0 {
		return d
	}
	return cmp.Compare(a.Name, b.Name)
}

// adoptWarm takes over a ready member of the pool, or returns nil when
// there is none. The takeover is a single merge patch on the Sandbox that
// replaces its controller reference with the claim's, carrying the
// resourceVersion the candidate had in the cache: if anyone (another
// claim, the pool) changed it since, the server refuses with a conflict
// and the claim moves on to the next candidate. That one conditional write
// is what makes a Sandbox impossible to bind to two claims.
//
// env is the claim's env annotation (warmEnv), written by the same patch.
func (c *Controller) adoptWarm(ctx context.Context, claim *extv1beta1.SandboxClaim, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate,
	env string) (*agentsv1beta1.Sandbox, time.Duration, error) {
	logger := klog.FromContext(ctx)
	// The cache still shows a lost candidate as the pool's until the
	// winner's write arrives: without this, the next attempt would pick
	// the same one again.
	tried := map[types.UID]bool{}
	for range maxAdoptAttempts {
		sb, starting, err := c.candidate(pool, tmpl, tried)
		if err != nil {
			return nil, 0, err
		}
		if sb == nil {
			// Members about to get an IP are worth a short wait for a young
			// claim: a warm start in half a second beats a cold one.
			if wait := claim.CreationTimestamp.Add(warmWait).Sub(c.opts.Clock.Now()); starting > 0 && wait > 0 {
				return nil, min(wait, warmWaitStep), nil
			}
			return nil, 0, nil
		}
		if !c.state.reserve(sb, claim.UID) {
			continue
		}
		c.traces.event(ctx, eventCandidateChosen, sb)
		patch, err := takeoverPatch(claim, pool, tmpl, sb, c.opts.Clock.Now(), env, c.traces.annotation(ctx, claim))
		if err != nil {
			c.state.release(sb.UID)
			return nil, 0, err
		}
		// Remember the binding before the write: if the write succeeds but
		// its response is lost, the next sync must wait for the informer,
		// not take a second Sandbox.
		c.state.remember(claim)
		adopted, err := c.client.AgentsV1beta1().Sandboxes(sb.Namespace).Patch(ctx, sb.Name, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			c.state.bind(claim, adopted.UID)
			c.traces.event(ctx, eventTakeoverWritten, adopted)
			logger.V(2).Info("Adopted warm Sandbox", "sandbox", klog.KObj(adopted))
			c.event(claim, adopted, ReasonSandboxAdopted, "Adoption", "Adopted warm Sandbox %s from pool %s", adopted.Name, pool.Name)
			c.opts.ClaimMetrics.bound(claim, adopted, agentsv1beta1.LaunchTypeWarm, tmpl.Name)
			return adopted, 0, nil
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// Someone changed it first (another claim took it, or its status
			// moved on): not ours this time.
			c.state.settled(claim.UID)
			c.state.release(sb.UID)
			tried[sb.UID] = true
			logger.V(4).Info("Candidate taken or gone; trying another", "sandbox", klog.KObj(sb))
			continue
		default:
			// Unknown outcome (timeout): keep the binding marker, so the
			// next sync waits to see whether the write landed. The
			// reservation is left to end by itself: at the member's next
			// event (the write landed, or can no longer land) or after
			// reservationTTL.
			return nil, 0, fmt.Errorf("adopting sandbox %s: %w", sb.Name, err)
		}
	}
	return nil, 0, nil
}

// takeable is the takeover check: a member is handed to a claim only if
// it runs exactly the current template (whoever made it: an identical
// Sandbox in the claim's own namespace is as good as the pool's), or,
// under OnReplenish, if this process's pool made it from an earlier
// template and nobody changed its spec since. Under Recreate a stale
// member is on its way out and never handed out. The spec is compared
// (once per member generation and template version, from a cache), never
// the hash labels: anyone who can create a Sandbox can write those. The
// pool reports the members it refuses; this only skips them.
func (c *Controller) takeable(pool *extv1beta1.SandboxWarmPool, checker *sandboxpolicy.StalenessChecker, recreate bool, sb *agentsv1beta1.Sandbox) bool {
	switch sandboxpolicy.JudgeMember(pool.UID, sb, c.matches(checker, sb), c.opts.Provenance) {
	case sandboxpolicy.MemberCurrent:
		return true
	case sandboxpolicy.MemberOwn:
		return !recreate
	}
	return false
}

// takeoverPatch moves sb from its pool to claim in one write, conditional
// on sb's resourceVersion (controller.TransferControllerRef): controller
// reference, labels (pool labels off, claim identity on, launch-type
// warm), the pool's eviction hint off, and the pod template's metadata
// only when it must change (the template's plus additionalPodMetadata): a spec
// change bumps the Sandbox's generation, which costs a status rewrite. The
// wake and idle knobs of pool and template ride along (knobsPatch).
//
// It also sets the claim's env annotation (env, from warmEnv), or removes
// one the member carries when the claim has none: an annotation forged on
// a pool member never survives a takeover. Removing it only when present
// is as good as always writing null, since the patch is conditional on
// the resourceVersion the cache showed. traceContext, if not empty, is
// the Sandbox's new trace-context annotation.
func takeoverPatch(claim *extv1beta1.SandboxClaim, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, sb *agentsv1beta1.Sandbox, now time.Time,
	env, traceContext string) ([]byte, error) {
	labels := map[string]any{
		agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
		agentsv1beta1.SandboxIDLabel:              string(claim.UID),
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
	}
	for _, k := range poolLabels {
		labels[k] = nil
	}
	if v, ok := claim.Labels[agentsv1beta1.CreatedByLabel]; ok {
		labels[agentsv1beta1.CreatedByLabel] = v
	} else {
		labels[agentsv1beta1.CreatedByLabel] = nil
	}
	metadata := map[string]any{"labels": labels}
	annotations := map[string]any{}
	for _, k := range []string{
		// The pool's hint that its idle Pod may be evicted: a claimed
		// sandbox is in use.
		agentsv1beta1.SafeToEvictAnnotation,
		// No longer a pool member.
		agentsv1beta1.WarmPoolMemberAnnotation,
	} {
		if _, ok := sb.Annotations[k]; ok {
			annotations[k] = nil
		}
	}
	knobsPatch(annotations, knobs(pool, tmpl), sb.Annotations, now)
	if env != "" {
		annotations[agentsv1beta1.EnvAnnotation] = env
	} else if _, ok := sb.Annotations[agentsv1beta1.EnvAnnotation]; ok {
		annotations[agentsv1beta1.EnvAnnotation] = nil
	}
	if traceContext != "" {
		annotations[agentsv1beta1.TraceContextAnnotation] = traceContext
	}
	if len(annotations) > 0 {
		metadata["annotations"] = annotations
	}
	patch := map[string]any{"metadata": metadata}

	podMeta, err := podMetadata(claim, tmpl)
	if err != nil {
		return nil, err
	}
	have := sb.Spec.PodTemplate.ObjectMeta
	if !sameKeys(have.Labels, podMeta.Labels) || !sameKeys(have.Annotations, podMeta.Annotations) {
		// Replaced whole: null out the keys the member had that the
		// claim's Sandbox must not (pool labels and the eviction hint of
		// members made by older versions, template keys since removed).
		patch["spec"] = map[string]any{"podTemplate": map[string]any{"metadata": map[string]any{
			"labels":      replaceMap(have.Labels, podMeta.Labels),
			"annotations": replaceMap(have.Annotations, podMeta.Annotations),
		}}}
	}
	return controller.TransferControllerRef(sb, claim, extv1beta1.SandboxClaimGroupVersionKind, patch)
}

// sameKeys is maps.Equal with nil and empty alike.
func sameKeys(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// replaceMap is the merge-patch value that turns have into want.
func replaceMap(have, want map[string]string) map[string]any {
	out := map[string]any{}
	for k := range have {
		out[k] = nil
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}
