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

package sandboxwarmpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// expectationsRecheck revisits a pool whose own writes are not all
// visible yet; normally the awaited watch events wake it first.
const expectationsRecheck = 30 * time.Second

// Event reasons.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
	ReasonNotProgressing   = extv1beta1.WarmPoolNotProgressingReason
	ReasonProgressing      = extv1beta1.WarmPoolProgressingReason
	// ReasonRefusedMember: a Sandbox names the pool as its controller but
	// is not one of its members (docs/controllers/sandboxwarmpool.md).
	ReasonRefusedMember = "RefusedMember"
)

// members is one pass's view of a pool.
type members struct {
	active        []*agentsv1beta1.Sandbox
	terminating   int
	unschedulable int
	// graceDeadline is the earliest time a not-Ready member's grace ends.
	graceDeadline time.Duration
}

func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (requeue time.Duration, err error) {
	logger := klog.FromContext(ctx)
	ctx, span := tracing.StartObject(ctx, c.opts.Tracer, "ReconcileSandboxWarmPool", "sandboxwarmpool", key.Namespace, key.Name, "")
	defer tracing.End(span, &err)
	soonest := func(d time.Duration) {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	// The pool's own timers are spaced like its members' events: none of
	// them is owed to the second.
	c.passes.mark(key.String(), c.opts.Clock.Now())
	defer func() {
		if requeue > 0 {
			requeue = max(requeue, c.passes.remaining(key.String(), c.opts.Clock.Now()))
		}
	}()

	pool, err := c.poolLister.SandboxWarmPools(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) || (err == nil && pool.DeletionTimestamp != nil) {
		// Members go by garbage collection; forget what we remembered.
		c.forgetPool(key.String())
		return requeue, nil
	}
	if err != nil {
		return requeue, err
	}

	// Whether our earlier writes are all visible must be known before the
	// members are counted, as kube-controller-manager's ReplicaSet
	// controller does: a create observed between the count and the check
	// would otherwise be counted as missing and made again (measured: a
	// pool of 3000 overshot by 2 under load).
	settled := c.expectations.Satisfied(key.String())
	if known, err := c.outcomeKnown(ctx, pool, key.String()); err != nil {
		return requeue, err
	} else if !known {
		// A create of unknown outcome landed and the informer has yet to
		// show it: counting now would make it again.
		settled = false
	}

	tmpl, tmplErr := c.templateLister.SandboxTemplates(pool.Namespace).Get(pool.Spec.TemplateRef.Name)
	var errs []error
	if tmplErr != nil && !apierrors.IsNotFound(tmplErr) {
		errs = append(errs, tmplErr)
	}
	m, err := c.classify(ctx, pool, tmpl)
	errs = append(errs, err)
	if c.afterClassify != nil {
		c.afterClassify()
	}

	desired := int(ptr.Deref(pool.Spec.Replicas, 1))
	current := len(m.active)
	ready := 0
	for _, sb := range m.active {
		if meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)) {
			ready++
		}
	}
	status := extv1beta1.SandboxWarmPoolStatus{
		Replicas:           int32(current),
		ReadyReplicas:      int32(ready),
		Selector:           agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash(pool.Name),
		ObservedGeneration: pool.Generation,
	}

	// Every pass shows the replenish delay the member count, so it sees
	// each drop; the hold matters only when creating.
	now := c.opts.Clock.Now()
	hold := c.refill.hold(key.String(), current, desired, now)
	switch {
	case current+m.terminating < desired && tmpl != nil:
		// Never create while what exists (active, held or still
		// terminating) already makes up the desired count.
		want := min(desired-current-m.terminating, c.opts.MaxBatchSize)
		if hold > 0 {
			logger.V(4).Info("Replenish delay: not creating yet", "remaining", hold)
			soonest(hold)
			break
		}
		granted, wait := c.refill.grant(key.String(), want, now)
		if granted == 0 {
			soonest(wait)
			break
		}
		if granted < want {
			// The rest waits for tokens; the creates' watch events usually
			// bring the pool back sooner.
			soonest(time.Duration(float64(time.Second) / c.opts.MaxRefillRate))
		}
		if !settled || !c.expectations.TryExpectCreations(key.String(), granted) {
			c.refill.refund(key.String(), granted)
			logger.V(4).Info("Earlier writes not yet observed; not creating")
			soonest(expectationsRecheck)
			break
		}
		created, err := c.createMembers(ctx, pool, tmpl, granted)
		c.refill.created(key.String(), created)
		errs = append(errs, err)
	case current > desired:
		if !settled || !c.expectations.Satisfied(key.String()) {
			soonest(expectationsRecheck)
			break
		}
		errs = append(errs, c.deleteExcess(ctx, pool, m.active, min(current-desired, c.opts.MaxBatchSize)))
	}

	c.setProgressing(key.String(), pool, m.unschedulable, desired)
	if m.unschedulable > 0 {
		soonest(c.opts.UnschedulableRecheck)
	}
	if m.graceDeadline > 0 {
		// Jitter so pools warmed together do not all wake at once.
		soonest(m.graceDeadline + time.Duration(rand.Float64()*0.5*float64(m.graceDeadline)))
	}

	if err := errors.Join(errs...); err != nil {
		// Counts from a failed pass may be wrong; keep the last good ones.
		return requeue, err
	}
	res, err := c.status.Write(ctx, pool, pool.Status, status, func() controller.StatusHold {
		return controller.StatusHold{For: c.statusPacer.wait(key.String(), pool, status, desired, c.opts.Clock.Now())}
	})
	if err != nil {
		return requeue, fmt.Errorf("writing pool status: %w", err)
	}
	if res.Wrote {
		c.statusPacer.wrote(key.String(), c.opts.Clock.Now())
	}
	soonest(res.RequeueAfter)
	return requeue, nil
}

// classify sorts the pool's Sandboxes into active and terminating members,
// deletes stale ones (orphans always, owned ones under Recreate), adopts
// fresh orphans, and replaces members stuck not Ready past the grace
// period, except unschedulable ones, which are held.
func (c *Controller) classify(ctx context.Context, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate) (members, error) {
	logger := klog.FromContext(ctx)
	key := pool.Namespace + "/" + pool.Name
	objs, err := c.memberIndexer.ByIndex(controller.WarmPoolMemberIndex, pool.Namespace+"/"+agentsv1beta1.NameHash(pool.Name))
	if err != nil {
		return members{}, err
	}
	recreate := pool.Spec.UpdateStrategy != nil && pool.Spec.UpdateStrategy.Type == extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType
	// Without a template nothing can be judged: members are counted as
	// they are until it is back (no creates happen meanwhile).
	var staleness *sandboxpolicy.StalenessChecker
	if tmpl != nil {
		staleness = sandboxpolicy.NewStalenessChecker(tmpl, c.opts.SecureDefaults)
	}
	refs := controller.NewControllerRefManager(pool, extv1beta1.SandboxWarmPoolGroupVersionKind,
		controller.RecheckDeletionTimestamp(pool, func(ctx context.Context) (metav1.Object, error) {
			return c.client.ExtensionsV1beta1().SandboxWarmPools(pool.Namespace).Get(ctx, pool.Name, metav1.GetOptions{})
		}))
	var m members
	var errs []error
	now := c.opts.Clock.Now()
	for _, o := range objs {
		sb := o.(*agentsv1beta1.Sandbox)
		if sb.Namespace != pool.Namespace {
			continue // the index is by namespace; never another's, whatever it says
		}
		owned := controller.IsControlledByUID(sb, pool)
		orphan := metav1.GetControllerOfNoCopy(sb) == nil
		switch {
		case sb.DeletionTimestamp != nil:
			if owned {
				m.terminating++
			}
			continue
		case owned && c.expectations.IsPendingDeletion(key, string(sb.UID)):
			m.terminating++
			continue
		case !owned && !orphan:
			continue // claimed, or someone else's
		}
		if orphan && staleness == nil {
			continue // adopted only once it can be checked against the template
		}
		stale := false
		why := "stale: the template changed"
		if orphan {
			res, err := c.adoptOrphan(ctx, refs, pool, staleness, sb)
			switch {
			case err != nil:
				errs = append(errs, err)
				continue
			case res == controller.ClaimUnmatched:
				stale = true // runs another template: the pool's to delete
			case res == controller.ClaimSkipped:
				continue // gone since the cache showed it
			}
		}
		if owned && staleness != nil {
			// Judged from the spec and from what the API server assigned,
			// never from labels: a Sandbox anyone made with this pool as its
			// controller is not a member unless it runs the template.
			switch sandboxpolicy.JudgeMember(pool.UID, sb, c.matches.Matches(staleness, sb), c.opts.Provenance) {
			case sandboxpolicy.MemberRefused:
				if !sandboxpolicy.RunsOwnPod(sb) {
					c.refuse(ctx, pool, sb)
					continue
				}
				// Controlled by this pool's UID and not running its template:
				// stale, and the pool's to delete, like an unverified member
				// (members made before the warm-pool-member annotation existed
				// land here after a template change, and no claim can take
				// them). A forgery asked for this by naming the pool.
				stale = true
				why = "stale: its spec differs from the template and it is not shown to be this pool's member"
			case sandboxpolicy.MemberUnverified:
				stale = true
			case sandboxpolicy.MemberOwn:
				stale = recreate
			case sandboxpolicy.MemberCurrent:
				// Re-pointing a Recreate pool at another template rolls it,
				// even an identically specified one.
				stale = recreate && staleness.Stale(sb, false)
			}
		}
		if stale {
			if err := c.deleteMember(ctx, pool, sb, owned, why); err != nil {
				errs = append(errs, err)
				continue
			}
			if owned {
				m.terminating++
			}
			continue
		}
		if !orphan && sb.Labels[agentsv1beta1.LaunchTypeLabel] != agentsv1beta1.LaunchTypeWarm {
			if err := c.markWarm(ctx, sb); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if !meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)) {
			age := now.Sub(sb.CreationTimestamp.Time)
			if remaining := c.opts.ReadinessGracePeriod - age; remaining >= 0 {
				deadline := remaining + 2*time.Second
				if m.graceDeadline == 0 || deadline < m.graceDeadline {
					m.graceDeadline = deadline
				}
			} else if c.unschedulable(sb) {
				// A replacement would be just as unschedulable: hold it.
				m.unschedulable++
			} else {
				if err := c.deleteMember(ctx, pool, sb, true, fmt.Sprintf("not Ready after %s", c.opts.ReadinessGracePeriod)); err != nil {
					errs = append(errs, err)
					m.active = append(m.active, sb)
					continue
				}
				m.terminating++
				continue
			}
		}
		m.active = append(m.active, sb)
	}
	logger.V(4).Info("Classified members", "active", len(m.active), "terminating", m.terminating, "unschedulable", m.unschedulable)
	return m, errors.Join(errs...)
}

func (c *Controller) unschedulable(sb *agentsv1beta1.Sandbox) bool {
	name := sb.Annotations[agentsv1beta1.PodNameAnnotation]
	if name == "" {
		name = sb.Name
	}
	pod, err := c.podLister.Pods(sb.Namespace).Get(name)
	if err != nil || pod.DeletionTimestamp != nil {
		return false
	}
	for _, pc := range pod.Status.Conditions {
		if pc.Type == corev1.PodScheduled && pc.Status == corev1.ConditionFalse && pc.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// adoptOrphan adopts an orphan carrying the pool's label if it runs the
// pool's template (controller.ControllerRefManager; ClaimUnmatched if it
// does not). It is then as good as a member the pool made: marked
// launch-type warm and as the pool's member in the adoption write, and
// remembered as such. The write also carries the resourceVersion: the
// spec was judged at that version.
func (c *Controller) adoptOrphan(ctx context.Context, refs *controller.ControllerRefManager, pool *extv1beta1.SandboxWarmPool,
	staleness *sandboxpolicy.StalenessChecker, sb *agentsv1beta1.Sandbox) (controller.ClaimResult, error) {
	var written *agentsv1beta1.Sandbox
	res, err := refs.ClaimObject(ctx, sb, controller.ChildControl{
		Kind:  "Sandbox",
		Match: func(o metav1.Object) bool { return !staleness.Stale(o.(*agentsv1beta1.Sandbox), true) },
		Patch: func(ctx context.Context, name string, data []byte) (err error) {
			written, err = c.client.AgentsV1beta1().Sandboxes(pool.Namespace).Patch(ctx, name, types.MergePatchType, data,
				metav1.PatchOptions{FieldManager: FieldManager})
			return err
		},
		AdoptFields: func(metav1.Object) (map[string]any, error) {
			return map[string]any{"metadata": map[string]any{
				"labels":      map[string]string{agentsv1beta1.LaunchTypeLabel: agentsv1beta1.LaunchTypeWarm},
				"annotations": map[string]string{agentsv1beta1.WarmPoolMemberAnnotation: string(pool.UID)},
			}}, nil
		},
		ResourceVersion: true,
	})
	if res == controller.ClaimAdopted {
		c.opts.Provenance.Created(pool.UID, written)
	}
	return res, err
}

// markWarm labels a member launch-type warm (members made by older
// versions lack it). The patch is conditional on the resourceVersion, so
// a concurrent change (a claim taking it) wins.
func (c *Controller) markWarm(ctx context.Context, sb *agentsv1beta1.Sandbox) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":          map[string]string{agentsv1beta1.LaunchTypeLabel: agentsv1beta1.LaunchTypeWarm},
		"resourceVersion": sb.ResourceVersion,
	}})
	if err == nil {
		_, err = c.client.AgentsV1beta1().Sandboxes(sb.Namespace).Patch(ctx, sb.Name, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("marking sandbox %s launch-type warm: %w", sb.Name, err)
	}
	return nil
}

// refuse reports, once per Sandbox (per process), one that names this
// pool as its controller but names another Pod as its own: it is not
// counted and is left alone (deleting it could take a Pod it adopted with
// it, and it is never handed to a claim).
func (c *Controller) refuse(ctx context.Context, pool *extv1beta1.SandboxWarmPool, sb *agentsv1beta1.Sandbox) {
	c.mu.Lock()
	_, seen := c.refused[sb.UID]
	c.refused[sb.UID] = struct{}{}
	c.mu.Unlock()
	if seen {
		return
	}
	why := "it names a Pod other than its own (" + agentsv1beta1.PodNameAnnotation + ")"
	klog.FromContext(ctx).Info("Not counting a Sandbox that names this pool as its controller", "sandbox", klog.KObj(sb), "reason", why)
	c.recorder.Eventf(pool, sb, corev1.EventTypeWarning, ReasonRefusedMember, "Classify",
		"Sandbox %s names this pool as its controller but is not counted as a member or handed to claims: %s", sb.Name, why)
}

// createMembers creates n members in slow-start batches. The expectation
// for all n was raised before the first create; every create that fails,
// or is never attempted, lowers it at once.
func (c *Controller) createMembers(ctx context.Context, pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, n int) (int, error) {
	key := pool.Namespace + "/" + pool.Name
	hashes, err := sandboxpolicy.HashTemplate(tmpl)
	if err != nil {
		c.expectations.LowerCreations(key, n)
		return 0, fmt.Errorf("hashing template %s: %w", tmpl.Name, err)
	}
	prototype := newMember(pool, tmpl, hashes, c.opts.EvictableMembers, c.opts.SecureDefaults)
	var firstName sync.Once
	var unknown atomic.Int32
	ok, err := controller.SlowStartBatch(ctx, n, controller.SlowStartInitialBatchSize, func(ctx context.Context) error {
		created, err := c.client.AgentsV1beta1().Sandboxes(pool.Namespace).Create(ctx, prototype.DeepCopy(), metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil // the namespace is going away; nothing to report
			}
			if !createRefused(err) {
				unknown.Add(1)
			}
			return err
		}
		c.opts.Provenance.Created(pool.UID, created)
		firstName.Do(func() { klog.FromContext(ctx).V(2).Info("Creating members", "first", klog.KObj(created), "count", n) })
		return nil
	})
	// Every create not known to have landed stops being expected; those
	// that may have landed are found by a live list instead (outcomeKnown).
	if missing := n - ok; missing > 0 {
		c.expectations.LowerCreations(key, missing)
	}
	if unknown.Load() > 0 {
		c.unknownCreates.happened(key)
	}
	if ok > 0 {
		c.recorder.Eventf(pool, nil, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Create", "Created %d Sandboxes", ok)
	}
	if err != nil {
		c.recorder.Eventf(pool, nil, corev1.EventTypeWarning, ReasonFailedCreate, "Create", "Failed to create Sandboxes: %v", err)
		return ok, fmt.Errorf("creating pool members: %w", err)
	}
	return ok, nil
}

// deleteExcess removes n members: not-Ready ones first, then the newest.
func (c *Controller) deleteExcess(ctx context.Context, pool *extv1beta1.SandboxWarmPool, active []*agentsv1beta1.Sandbox, n int) error {
	victims := slices.Clone(active)
	slices.SortStableFunc(victims, func(a, b *agentsv1beta1.Sandbox) int {
		ra := meta.IsStatusConditionTrue(a.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		rb := meta.IsStatusConditionTrue(b.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		if ra != rb {
			if !ra {
				return -1
			}
			return 1
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	victims = victims[:n]
	var next int
	var mu sync.Mutex
	_, err := controller.SlowStartBatch(ctx, n, controller.SlowStartInitialBatchSize, func(ctx context.Context) error {
		mu.Lock()
		sb := victims[next]
		next++
		mu.Unlock()
		return c.deleteMember(ctx, pool, sb, true, "scaling down")
	})
	return err
}

// deleteMember deletes one Sandbox. For an owned one the deletion
// expectation is recorded before the request and dropped again at once if
// the request fails, so a lost delete can never stall the pool.
func (c *Controller) deleteMember(ctx context.Context, pool *extv1beta1.SandboxWarmPool, sb *agentsv1beta1.Sandbox, owned bool, why string) error {
	key := pool.Namespace + "/" + pool.Name
	uid := string(sb.UID)
	if owned {
		c.expectations.ExpectDeletions(key, uid)
	}
	// The resourceVersion precondition makes a stale view fail: a member a
	// claim has just taken over must never be deleted by the pool.
	err := c.client.AgentsV1beta1().Sandboxes(sb.Namespace).Delete(ctx, sb.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &sb.UID, ResourceVersion: &sb.ResourceVersion},
	})
	if err != nil {
		if owned {
			c.expectations.DeletionObserved(key, uid)
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if apierrors.IsConflict(err) {
			// Changed since we looked (claimed, most likely): the watch event
			// brings the pool back with the new state.
			return nil
		}
		c.recorder.Eventf(pool, sb, corev1.EventTypeWarning, ReasonFailedDelete, "Delete", "Failed to delete Sandbox %s: %v", sb.Name, err)
		return fmt.Errorf("deleting sandbox %s: %w", sb.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted member", "sandbox", klog.KObj(sb), "reason", why)
	c.recorder.Eventf(pool, sb, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Delete", "Deleted Sandbox %s (%s)", sb.Name, why)
	return nil
}

// setProgressing sends WarmPoolNotProgressing when members start being
// held as unschedulable and WarmPoolProgressing when that ends; a nil pool
// only forgets the state.
func (c *Controller) setProgressing(key string, pool *extv1beta1.SandboxWarmPool, unschedulable, desired int) {
	c.mu.Lock()
	was := c.notProgressing[key]
	if pool == nil || unschedulable == 0 {
		delete(c.notProgressing, key)
	} else {
		c.notProgressing[key] = true
	}
	c.mu.Unlock()
	switch {
	case pool == nil:
	case unschedulable > 0 && !was:
		c.recorder.Eventf(pool, nil, corev1.EventTypeWarning, ReasonNotProgressing, "Reconciling",
			"%d/%d sandboxes are unschedulable past the %s readiness grace period; holding them instead of replacing (replacements would be equally unschedulable)",
			unschedulable, desired, c.opts.ReadinessGracePeriod)
	case unschedulable == 0 && was:
		c.recorder.Eventf(pool, nil, corev1.EventTypeNormal, ReasonProgressing, "Reconciling", "Warm pool is progressing again")
	}
}

// statusBody is the pool's status patch: every field, zero counts written
// as such (a merge patch of the difference would drop a zero to null, and
// "readyReplicas: 0" is what `kubectl wait` on a drained pool looks for).
func statusBody(_, status extv1beta1.SandboxWarmPoolStatus) ([]byte, bool, error) {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"replicas":           status.Replicas,
		"readyReplicas":      status.ReadyReplicas,
		"selector":           status.Selector,
		"observedGeneration": status.ObservedGeneration,
	}})
	return patch, err == nil, err
}
