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
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// fakeSandboxServer is one Sandbox on an API server that honours the
// tracker's preconditions: a JSON patch's test of last-activity, a merge
// patch's resourceVersion. Every committed write is recorded and shown to
// the replicas' caches, as a watch would.
type fakeSandboxServer struct {
	mu        sync.Mutex
	sb        *agentsv1beta1.Sandbox
	committed []string
	replicas  []*activityTracker
	// attempts counts every patch, committed or not.
	attempts int
	// hold keeps committed writes from the replicas' caches (a watch
	// that lags) until release.
	hold bool
	held []*agentsv1beta1.Sandbox
}

// maxAttempts ends a write loop the tracker should not have: past it the
// fake releases the held events, so such a loop ends and its count shows.
const maxAttempts = 50

var idleKey = nameKey{"team", "idle"}

func newFakeSandboxServer() *fakeSandboxServer {
	return &fakeSandboxServer{sb: &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team", Name: "idle", UID: "idle-uid", ResourceVersion: "1",
		Annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "1m"},
	}}}
}

func (s *fakeSandboxServer) patch(_ context.Context, _, _ string, pt types.PatchType, data []byte) (*agentsv1beta1.Sandbox, error) {
	s.mu.Lock()
	s.attempts++
	if s.attempts > maxAttempts && s.hold {
		s.hold = false
		defer s.release()
	}
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "sandboxes"}, "idle", nil)
	// What kube-apiserver answers a JSON patch whose test fails.
	testFailed := apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", schema.GroupResource{Resource: "sandboxes"}, "idle",
		"the server rejected our request due to an error in our request", 0, false)
	cur, hasCur := s.sb.Annotations[agentsv1beta1.LastActivityAnnotation]
	var value string
	switch pt {
	case types.JSONPatchType:
		var ops []map[string]string
		if err := json.Unmarshal(data, &ops); err != nil || len(ops) != 2 || ops[0]["op"] != "test" {
			s.mu.Unlock()
			return nil, apierrors.NewBadRequest(string(data))
		}
		if !hasCur || ops[0]["value"] != cur {
			s.mu.Unlock()
			return nil, testFailed
		}
		value = ops[1]["value"]
	case types.MergePatchType:
		var p struct {
			Metadata struct {
				ResourceVersion string            `json:"resourceVersion"`
				Annotations     map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(data, &p); err != nil || p.Metadata.ResourceVersion == "" {
			s.mu.Unlock()
			return nil, apierrors.NewBadRequest("an unconditional merge patch: " + string(data))
		}
		if p.Metadata.ResourceVersion != s.sb.ResourceVersion {
			s.mu.Unlock()
			return nil, conflict
		}
		value = p.Metadata.Annotations[agentsv1beta1.LastActivityAnnotation]
	}
	sb := s.sb.DeepCopy()
	sb.Annotations[agentsv1beta1.LastActivityAnnotation] = value
	rv, _ := strconv.Atoi(sb.ResourceVersion)
	sb.ResourceVersion = strconv.Itoa(rv + 1)
	s.sb = sb
	s.committed = append(s.committed, value)
	if s.hold {
		s.held = append(s.held, sb.DeepCopy())
		s.mu.Unlock()
		return sb.DeepCopy(), nil
	}
	replicas := s.replicas
	s.mu.Unlock()
	for _, r := range replicas {
		r.observe(idleKey, sb.DeepCopy(), true)
	}
	return sb.DeepCopy(), nil
}

// release shows the held writes to the replicas' caches, in order.
func (s *fakeSandboxServer) release() {
	s.mu.Lock()
	held, replicas := s.held, s.replicas
	s.held, s.hold = nil, false
	s.mu.Unlock()
	for _, sb := range held {
		for _, r := range replicas {
			r.observe(idleKey, sb.DeepCopy(), true)
		}
	}
}

func (s *fakeSandboxServer) attemptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

func (s *fakeSandboxServer) writes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.committed...)
}

var idleStart = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func newReplica(t *testing.T, clk *clocktesting.FakeClock, srv *fakeSandboxServer) *activityTracker {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	tr := newActivityTracker(clk, srv.patch, newActivityWrites(), logger)
	srv.mu.Lock()
	srv.replicas = append(srv.replicas, tr)
	sb := srv.sb.DeepCopy()
	srv.mu.Unlock()
	tr.observe(idleKey, sb, true)
	return tr
}

var idleEntry = CacheEntry{Namespace: "team", Name: "idle", SandboxUID: "idle-uid"}

// request is one short request through tr, its writes waited for.
func request(tr *activityTracker) {
	tr.begin(idleEntry)()
	tr.wg.Wait()
}

// step moves the clock and waits for the writes its timers started.
func step(clk *clocktesting.FakeClock, d time.Duration, trs ...*activityTracker) {
	clk.Step(d)
	for _, tr := range trs {
		tr.wg.Wait()
	}
}

func ts(d time.Duration) string { return agentsv1beta1.FormatActivityTime(idleStart.Add(d)) }

func TestActivityOneWritePerWindow(t *testing.T) {
	const w = time.Minute
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	tr := newReplica(t, clk, srv)

	// No last-activity yet: the first request writes now, conditional on
	// the resourceVersion.
	request(tr)
	// Many more within the window: nothing written now...
	for range 10 {
		step(clk, 5*time.Second, tr)
		request(tr)
	}
	if got := srv.writes(); len(got) != 1 || got[0] != ts(0) {
		t.Fatalf("writes after the first window's requests = %v, want [%s]", got, ts(0))
	}
	// ... but at a+W, a+W itself.
	step(clk, w-50*time.Second, tr)
	if got := srv.writes(); len(got) != 2 || got[1] != ts(w) {
		t.Fatalf("writes at a+W = %v, want [%s %s]", got, ts(0), ts(w))
	}
	// A window without requests: no write at its end.
	step(clk, w, tr)
	if got := srv.writes(); len(got) != 2 {
		t.Fatalf("a window without requests wrote: %v", got)
	}
	// Activity after a+W is written at once, with its own time.
	step(clk, 30*time.Second, tr)
	request(tr)
	if got := srv.writes(); len(got) != 3 || got[2] != ts(2*w+30*time.Second) {
		t.Fatalf("writes = %v, want a third at %s", got, ts(2*w+30*time.Second))
	}
	if got := writesWith(t, tr, activityWritten); got != 3 {
		t.Errorf("written = %v, want 3", got)
	}
}

func TestActivityInFlightSpansWindows(t *testing.T) {
	const w = time.Minute
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	tr := newReplica(t, clk, srv)
	end := tr.begin(idleEntry)
	tr.wg.Wait()
	step(clk, w, tr)
	step(clk, w, tr)
	end()
	tr.wg.Wait()
	want := []string{ts(0), ts(w), ts(2 * w)}
	if got := srv.writes(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("writes of a request spanning two windows = %v, want %v", got, want)
	}
	// Ended: the next window passes without a write.
	step(clk, w, tr)
	step(clk, w, tr)
	if got := srv.writes(); len(got) != 3 {
		t.Fatalf("writes after the request ended = %v", got)
	}
}

func TestActivityTwoReplicasOneCommitPerWindow(t *testing.T) {
	const w = time.Minute
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	a, b := newReplica(t, clk, srv), newReplica(t, clk, srv)
	for i := range 5 * 12 { // five windows, a request on each replica every 5 s
		request(a)
		request(b)
		if i%3 == 0 {
			// A request in flight on b across the step, too.
			end := b.begin(idleEntry)
			step(clk, 5*time.Second, a, b)
			end()
			b.wg.Wait()
			continue
		}
		step(clk, 5*time.Second, a, b)
	}
	got := srv.writes()
	if len(got) > 6 {
		t.Fatalf("%d committed writes in 5 windows: %v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		prev, _ := time.Parse(time.RFC3339, got[i-1])
		cur, _ := time.Parse(time.RFC3339, got[i])
		if cur.Sub(prev) < w {
			t.Fatalf("writes %s and %s are less than W apart: %v", got[i-1], got[i], got)
		}
	}
	if last, _ := time.Parse(time.RFC3339, got[len(got)-1]); clk.Now().Sub(last) > w {
		t.Errorf("last activity %s is more than W before now %s: the sandbox could be suspended while busy", last, clk.Now())
	}
}

// TestActivityLoserWaitsForTheCache: the replica whose conditional write
// loses must not send it again until its cache shows the winner's value;
// retrying against a value the server has moved past fails every time,
// as fast as the API server answers, for as long as the watch lags.
func TestActivityLoserWaitsForTheCache(t *testing.T) {
	const w = time.Minute
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	a, b := newReplica(t, clk, srv), newReplica(t, clk, srv)
	request(a) // a := now, seen by both caches
	srv.mu.Lock()
	srv.hold = true
	srv.mu.Unlock()
	step(clk, 5*time.Second, a, b)
	request(a)
	request(b)
	// Both replicas have activity to record at a+W; one write commits,
	// the other fails its test, and the watch lags behind both.
	step(clk, w-5*time.Second, a, b)
	// More activity on both while the loser's cache is stale.
	step(clk, 5*time.Second, a, b)
	request(a)
	request(b)
	if got := srv.attemptCount(); got != 3 {
		t.Fatalf("%d patches (1 at the start, then the window's), want 3: the loser of a conditional write retried against a stale value", got)
	}
	srv.release()
	a.wg.Wait()
	b.wg.Wait()
	if got := srv.writes(); len(got) != 2 || got[1] != ts(w) {
		t.Fatalf("committed = %v, want [%s %s]", got, ts(0), ts(w))
	}
	conflicts := writesWith(t, a, activityConflict) + writesWith(t, b, activityConflict)
	errs := writesWith(t, a, activityError) + writesWith(t, b, activityError)
	if conflicts != 1 || errs != 0 {
		t.Errorf("conflict %v, error %v; want 1 and 0 (a failed JSON patch test is a conflict)", conflicts, errs)
	}
	// The next window is written once, by whichever replica fires first.
	step(clk, w, a, b)
	if got := srv.writes(); len(got) != 3 || got[2] != ts(2*w) {
		t.Errorf("committed after the next window = %v, want a third at %s", got, ts(2*w))
	}
}

func TestActivityUntrackedAndDropped(t *testing.T) {
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	tr := newReplica(t, clk, srv)
	// Another UID under the same name (recreated, cache behind): nothing.
	other := idleEntry
	other.SandboxUID = "other"
	tr.begin(other)()
	tr.wg.Wait()
	if got := srv.writes(); len(got) != 0 {
		t.Fatalf("a request to another UID wrote %v", got)
	}
	// Unrouted: forgotten, nothing written.
	tr.observe(idleKey, srv.sb, false)
	request(tr)
	if got, n := srv.writes(), tr.tracked(); len(got) != 0 || n != 0 {
		t.Fatalf("after unroute: writes %v, tracked %d", got, n)
	}
	// Not opted in: never tracked.
	sb := srv.sb.DeepCopy()
	delete(sb.Annotations, agentsv1beta1.IdleTimeoutAnnotation)
	tr.observe(idleKey, sb, true)
	if n := tr.tracked(); n != 0 {
		t.Fatalf("tracked %d sandboxes without an idle timeout", n)
	}
}

func TestActivityFlushOnDrain(t *testing.T) {
	clk := clocktesting.NewFakeClock(idleStart)
	srv := newFakeSandboxServer()
	tr := newReplica(t, clk, srv)
	request(tr)
	step(clk, 20*time.Second, tr)
	request(tr)
	tr.flush(context.Background())
	if got := srv.writes(); len(got) != 2 || got[1] != ts(20*time.Second) {
		t.Fatalf("writes after the drain = %v, want the pending activity %s flushed", got, ts(20*time.Second))
	}
}

// writesWith reads sandbox_router_activity_writes_total{result} of tr.
func writesWith(t *testing.T, tr *activityTracker, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr.writes)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
