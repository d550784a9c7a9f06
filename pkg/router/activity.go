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

package router

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Results of an activity write, the values of the result label of
// sandbox_router_activity_writes_total.
const (
	activityWritten   = "written"
	activityConflict  = "conflict"
	activityForbidden = "forbidden"
	activityError     = "error"
)

// activityWriteTimeout bounds one activity patch; a slower API server
// gets the write again at the next activity or timer.
const activityWriteTimeout = 10 * time.Second

// activityRetryDelay holds off the next activity write of a Sandbox after
// an API error or a refusal, so a failing API server or a missing RBAC
// rule costs one request per Sandbox per delay, not a loop.
const activityRetryDelay = 5 * time.Second

// sandboxPatcher sends one patch to a Sandbox.
type sandboxPatcher func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte) (*agentsv1beta1.Sandbox, error)

// activityTracker records, for Sandboxes opted in to idle auto-suspend,
// the requests through this replica in the last-activity annotation, with
// at most one committed write per Sandbox per idle window W, whatever the
// number of replicas (docs/design/idle.md, "Activity tracking"):
//
//   - on activity at t: if t ≥ a + W it writes a := t at once; otherwise it
//     sets pending;
//   - at a + W, if pending is set or a request is in flight, it writes
//     a := a + W: derived, not read from a clock, so replicas write the
//     same value;
//   - every write tests the previous value (a JSON patch test, or a merge
//     patch conditional on the resourceVersion when a is absent), so of
//     two replicas racing only one commits; the loser keeps its pending
//     activity and re-arms from the value its cache then shows.
//
// Each write raises a by at least W and commits only over the value it
// tested: at most one per window. The state is bounded by the opted-in
// routable Sandboxes: the cache adds and removes them (observe).
type activityTracker struct {
	clock   clock.WithDelayedExecution
	patch   sandboxPatcher
	logger  klog.Logger
	writes  *prometheus.CounterVec
	mu      sync.Mutex
	entries map[nameKey]*activity
	// forbiddenLogged: a missing RBAC grant is logged once, not per write.
	forbiddenLogged bool
	// wg tracks the writes in flight, which a drain waits for.
	wg sync.WaitGroup
	// closed is set by the drain's flush: no timer is armed after it.
	closed bool
}

// activity is the tracker's state of one Sandbox, under the tracker's mu.
type activity struct {
	namespace, name string
	uid             types.UID
	w               time.Duration
	// a is the last-activity value this replica last saw (cache or its
	// own committed write); hasA is false while the annotation is absent.
	a    time.Time
	hasA bool
	// rv is the resourceVersion the merge patch is conditional on while
	// a is absent.
	rv string
	// last is the latest activity seen here, the value a drain flushes.
	last     time.Time
	pending  bool
	inflight int
	timer    clock.Timer
	timerAt  time.Time
	// timerGen tells a fired timer whether it is still the armed one.
	timerGen uint64
	writing  bool
	gone     bool
	// staleA is set when a write lost to another writer: a is known to
	// be behind the server, so nothing is written until the cache shows
	// the winner's value (observe), instead of retrying against a value
	// the server has already moved past, over and over, until it does.
	staleA bool
	// retryAfter holds off the next write after an API error.
	retryAfter time.Time
}

// newActivityWrites is sandbox_router_activity_writes_total, registered
// with the router's other metrics whether or not tracking is on, so every
// metric the binary can export is known (and documented) up front.
func newActivityWrites() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandbox_router_activity_writes_total",
		Help: "Attempts to record a sandbox's activity in its last-activity annotation, by result: written (committed), conflict (another replica or writer got there first; nothing committed), forbidden (the router lacks patch on sandboxes), error.",
	}, []string{"result"})
}

func newActivityTracker(c clock.WithDelayedExecution, patch sandboxPatcher, writes *prometheus.CounterVec, logger klog.Logger) *activityTracker {
	t := &activityTracker{
		clock: c, patch: patch, logger: logger.WithName("activity"), entries: map[nameKey]*activity{},
		writes: writes,
	}
	for _, r := range []string{activityWritten, activityConflict, activityForbidden, activityError} {
		t.writes.WithLabelValues(r)
	}
	return t
}

// observe brings the tracker in line with the cache's view of a Sandbox:
// sb is nil when it is gone, routable says whether it has a cache entry.
// Only opted-in routable Sandboxes are tracked.
func (t *activityTracker) observe(k nameKey, sb *agentsv1beta1.Sandbox, routable bool) {
	var w time.Duration
	opted := false
	if sb != nil && routable && sb.DeletionTimestamp == nil {
		w, opted, _ = agentsv1beta1.IdleTimeout(sb.Annotations)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if !opted {
		if e != nil {
			t.dropLocked(k, e)
		}
		return
	}
	if e != nil && e.uid != sb.UID {
		// Recreated under the same name: nothing carries over.
		t.dropLocked(k, e)
		e = nil
	}
	if e == nil {
		e = &activity{namespace: sb.Namespace, name: sb.Name, uid: sb.UID}
		t.entries[k] = e
	}
	e.w = w
	e.rv = sb.ResourceVersion
	e.staleA = false
	if a, ok := agentsv1beta1.ParseLastActivity(sb.Annotations); ok {
		// Never back: our own committed write may be ahead of the
		// cache for a moment.
		if !e.hasA || a.After(e.a) {
			e.a, e.hasA = a, true
		}
	}
	t.armLocked(k, e)
}

func (t *activityTracker) dropLocked(k nameKey, e *activity) {
	e.gone = true
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	delete(t.entries, k)
}

// begin records the start of an authorized, resolved request to the
// Sandbox of entry, and returns what its end calls. A request in flight
// counts as activity for as long as it lasts.
func (t *activityTracker) begin(entry CacheEntry) (end func()) {
	k := nameKey{entry.Namespace, entry.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e == nil || e.uid != entry.SandboxUID {
		return func() {}
	}
	e.inflight++
	t.activeLocked(k, e)
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if e.gone {
			return
		}
		e.inflight--
		t.activeLocked(k, e)
	}
}

// activeLocked applies the rule to activity now.
func (t *activityTracker) activeLocked(k nameKey, e *activity) {
	now := t.clock.Now()
	if now.After(e.last) {
		e.last = now
	}
	if !e.writing && !e.staleA && !now.Before(e.retryAfter) && (!e.hasA || !now.Before(e.a.Add(e.w))) {
		t.writeLocked(k, e, now.Truncate(time.Second))
		return
	}
	if !e.hasA || e.last.Truncate(time.Second).After(e.a) {
		e.pending = true
	}
	t.armLocked(k, e)
}

// armLocked sets the timer at a + W while there is something to record
// then: pending activity or a request in flight.
func (t *activityTracker) armLocked(k nameKey, e *activity) {
	if e.pending && e.hasA && !e.last.Truncate(time.Second).After(e.a) {
		// Already covered by a (written to the second).
		e.pending = false
	}
	if t.closed || e.writing || e.staleA || !e.hasA || (!e.pending && e.inflight == 0) {
		return
	}
	// at is the value the write records (derived, so replicas agree);
	// when is when to send it, later only after an API error.
	at := e.a.Add(e.w)
	when := at
	if e.retryAfter.After(when) {
		when = e.retryAfter
	}
	if e.timer != nil {
		if e.timerAt.Equal(when) {
			return
		}
		e.timer.Stop()
	}
	if now := t.clock.Now(); !when.After(now) {
		// Already due (the write that armed it committed late, or the
		// cache showed an old a): no timer, which a clock that has
		// passed its time might never fire.
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		t.writeLocked(k, e, at)
		return
	}
	e.timerAt = when
	e.timerGen++
	gen := e.timerGen
	e.timer = t.clock.AfterFunc(when.Sub(t.clock.Now()), func() {
		// In a goroutine of its own: a fake clock runs this under its
		// lock, where neither Now nor AfterFunc may be called. Counted in
		// wg, so a test that steps the clock can wait for the write.
		t.wg.Go(func() { t.fire(k, e, gen, at) })
	})
}

func (t *activityTracker) fire(k nameKey, e *activity, gen uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.timer == nil || e.timerGen != gen {
		return // stopped or replaced meanwhile
	}
	e.timer = nil
	if e.gone || e.writing || !e.hasA || (!e.pending && e.inflight == 0) {
		return
	}
	if cur := e.a.Add(e.w); cur.After(at) {
		// a moved on meanwhile (another replica's write).
		t.armLocked(k, e)
		return
	}
	t.writeLocked(k, e, at)
}

// writeLocked sends the write of a := value in the background; the
// request that caused it does not wait for the API server.
func (t *activityTracker) writeLocked(k nameKey, e *activity, value time.Time) {
	const key = agentsv1beta1.LastActivityAnnotation
	s := agentsv1beta1.FormatActivityTime(value)
	var (
		pt   types.PatchType
		body []byte
		err  error
	)
	if e.hasA {
		path := annotationPath(key)
		pt = types.JSONPatchType
		body, err = json.Marshal([]jsonPatchOp{
			{Op: "test", Path: path, Value: agentsv1beta1.FormatActivityTime(e.a)},
			{Op: "replace", Path: path, Value: s},
		})
	} else {
		pt = types.MergePatchType
		body, err = json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": e.rv, "annotations": map[string]string{key: s}}})
	}
	if err != nil {
		return
	}
	e.writing, e.pending = true, false
	ns, name, sentRV := e.namespace, e.name, e.rv
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), activityWriteTimeout)
		defer cancel()
		out, err := t.patch(ctx, ns, name, pt, body)
		t.done(k, e, value, sentRV, out, err)
	}()
}

func (t *activityTracker) done(k nameKey, e *activity, value time.Time, sentRV string, out *agentsv1beta1.Sandbox, err error) {
	result := activityWritten
	switch {
	case err == nil:
	case apierrors.IsConflict(err) || apierrors.IsInvalid(err):
		// The merge patch's resourceVersion precondition fails with 409;
		// a failed JSON patch test is answered 422 Invalid (the patch
		// itself is always well formed): both mean another writer got
		// there first.
		result = activityConflict
	case apierrors.IsForbidden(err):
		result = activityForbidden
	default:
		result = activityError
	}
	t.writes.WithLabelValues(result).Inc()
	t.mu.Lock()
	defer t.mu.Unlock()
	e.writing = false
	if result == activityForbidden && !t.forbiddenLogged {
		t.forbiddenLogged = true
		t.logger.Error(err, "Cannot record sandbox activity: the router needs patch on sandboxes (manifests/components/router-wake-idle); idle sandboxes may be suspended while in use")
	}
	if e.gone {
		return
	}
	if err != nil {
		if !apierrors.IsNotFound(err) {
			// Recorded again from the value the cache shows next, at
			// the next activity or timer.
			e.pending = true
		}
		switch result {
		case activityConflict:
			// Unless the cache has shown a newer version meanwhile,
			// wait for it to show the winner's write.
			e.staleA = e.rv == sentRV
		case activityForbidden, activityError:
			e.retryAfter = t.clock.Now().Add(activityRetryDelay)
		}
		t.logger.V(4).Info("Activity write not committed", "sandbox", klog.KRef(e.namespace, e.name), "result", result, "err", err)
		t.armLocked(k, e)
		return
	}
	e.retryAfter = time.Time{}
	if !e.hasA || value.After(e.a) {
		e.a, e.hasA = value, true
	}
	if out != nil {
		e.rv = out.ResourceVersion
	}
	t.armLocked(k, e)
}

// flush writes, for every Sandbox with activity not yet recorded, the
// latest activity seen, and waits for the writes in flight: a draining
// replica must not take a window's activity with it. It may write less
// than W after the previous value: once per replica shutdown.
func (t *activityTracker) flush(ctx context.Context) {
	t.mu.Lock()
	t.closed = true
	for k, e := range t.entries {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		if e.writing || (!e.pending && e.inflight == 0) || (e.hasA && !e.last.Truncate(time.Second).After(e.a)) {
			continue
		}
		t.writeLocked(k, e, e.last)
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// tracked is the number of Sandboxes tracked, for tests.
func (t *activityTracker) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
