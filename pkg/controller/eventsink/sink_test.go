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

package eventsink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

// The Recorder stands in for client-go's recorders, and client-go's
// FakeRecorder (the controllers' unit tests use it) for EventRecorder.
var (
	_ events.EventRecorder = (*Recorder)(nil)
	_ EventRecorder        = (*events.FakeRecorder)(nil)
)

// fixture is a Sink on a fake clientset and a fake clock, with no Run:
// tests take queued writes with drain and send them with s.write.
type fixture struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	kube    *fake.Clientset
	reg     *prometheus.Registry
	sink    *Sink
	rec     *Recorder
	pod     *corev1.Pod
	service *corev1.Service
}

func newFixture(t *testing.T, opts Options) *fixture {
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)),
		kube: fake.NewSimpleClientset(), reg: prometheus.NewRegistry()}
	opts.Clock, opts.Controller, opts.Metrics = f.clock, "test-controller", metrics.NewEventMetrics(f.reg)
	if opts.Workers == 0 {
		// One queue: drain sees the writes in the order they were queued.
		opts.Workers = 1
	}
	f.sink = New(f.kube.EventsV1(), opts)
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f.rec = f.sink.Recorder(scheme, "test-controller", klog.Background())
	f.pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "pod-uid"}}
	f.service = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "svc-uid"}}
	return f
}

// drain takes every queued write without sending it, in the order of
// the workers' queues.
func (f *fixture) drain() []*eventsv1.Event {
	var out []*eventsv1.Event
	for _, writes := range f.sink.writes {
		for len(writes) > 0 {
			out = append(out, (<-writes).ev)
		}
	}
	return out
}

// send writes every queued Event, as a worker would.
func (f *fixture) send() {
	_, ctx := ktesting.NewTestContext(f.t)
	for _, ev := range f.drain() {
		f.sink.write(ctx, ev)
	}
}

func (f *fixture) written(result string) float64 {
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "agent_sandbox_event_writes_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if hasLabels(m, "controller", "test-controller", "result", result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, pairs ...string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		for i := 0; i < len(pairs); i += 2 {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found++
			}
		}
	}
	return found == len(pairs)/2
}

// events lists the Events stored in ns.
func (f *fixture) events() []eventsv1.Event {
	list, err := f.kube.EventsV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

func TestRepeatsBecomeOneEventWithASeries(t *testing.T) {
	f := newFixture(t, Options{})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Failed: %s", "quota")
	f.send()
	evs := f.events()
	if len(evs) != 1 || evs[0].Series != nil || evs[0].Note != "Failed: quota" || evs[0].ReportingController != "test-controller" ||
		evs[0].Regarding.UID != "pod-uid" || evs[0].Action != "Create" || evs[0].Type != corev1.EventTypeWarning {
		t.Fatalf("after one Event: %+v", evs)
	}
	first := evs[0].EventTime

	// The first repeat is written at once as count 2.
	f.clock.Step(time.Second)
	f.rec.Eventf(f.pod, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Failed: %s", "quota")
	writes := f.drain()
	if len(writes) != 1 || writes[0].Series == nil || writes[0].Series.Count != 2 || writes[0].Name != evs[0].Name ||
		!writes[0].EventTime.Equal(&first) {
		t.Fatalf("first repeat writes %+v, want the series of %s with count 2", writes, evs[0].Name)
	}
	// Later repeats wait for the flush, which writes their count once.
	for range 3 {
		f.clock.Step(time.Second)
		f.rec.Eventf(f.pod, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Failed: %s", "quota")
	}
	if w := f.drain(); len(w) != 0 {
		t.Fatalf("repeats after the first wrote %d Events before the flush", len(w))
	}
	f.sink.flush()
	writes = f.drain()
	if len(writes) != 1 || writes[0].Series.Count != 5 || !writes[0].Series.LastObservedTime.Time.Equal(f.clock.Now()) {
		t.Fatalf("flush writes %+v, want one series write with count 5", writes)
	}
	f.sink.flush()
	if w := f.drain(); len(w) != 0 {
		t.Fatalf("a flush with nothing new writes %d Events", len(w))
	}
}

func TestSeriesPatchesTheFirstEventOnTheAPI(t *testing.T) {
	f := newFixture(t, Options{})
	for range 3 {
		f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted Pod p")
		f.clock.Step(time.Second)
	}
	f.sink.flush()
	f.send()
	evs := f.events()
	if len(evs) != 1 || evs[0].Series == nil || evs[0].Series.Count != 3 {
		t.Fatalf("stored Events %+v, want one with series count 3", evs)
	}
	if got := f.written(metrics.EventCreated); got != 1 {
		t.Errorf("created = %v, want 1", got)
	}
	if got := f.written(metrics.EventSeries); got != 2 {
		t.Errorf("series writes = %v, want 2 (the first repeat, the flush)", got)
	}
}

func TestSeriesOfAMissingEventIsCreatedWhole(t *testing.T) {
	f := newFixture(t, Options{})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted Pod p")
	f.drain() // the first Event is lost (dropped, or expired on the server)
	f.clock.Step(time.Second)
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted Pod p")
	f.send()
	evs := f.events()
	if len(evs) != 1 || evs[0].Series == nil || evs[0].Series.Count != 2 || evs[0].Note != "Adopted Pod p" {
		t.Fatalf("stored Events %+v, want the series created whole with count 2", evs)
	}
}

func TestDifferentEventsAreNotASeries(t *testing.T) {
	f := newFixture(t, Options{})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Created", "Create", "Created Service s")
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Created", "Create", "Created Service t")       // note
	f.rec.Eventf(f.pod, f.service, corev1.EventTypeNormal, "Created", "Create", "Created Service s") // related
	f.rec.Eventf(f.service, nil, corev1.EventTypeNormal, "Created", "Create", "Created Service s")   // regarding
	f.rec.Eventf(f.pod, nil, corev1.EventTypeWarning, "Created", "Create", "Created Service s")      // type
	for _, w := range f.drain() {
		if w.Series != nil {
			t.Errorf("%s/%s %q is written as a series", w.Regarding.Name, w.Reason, w.Note)
		}
	}
}

func TestAQuietEventStartsANewOne(t *testing.T) {
	f := newFixture(t, Options{SeriesWindow: time.Minute, SeriesFlush: 10 * time.Second})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted Pod p")
	first := f.drain()
	f.clock.Step(time.Minute)
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "Adopted Pod p")
	second := f.drain()
	if len(second) != 1 || second[0].Series != nil || second[0].Name == first[0].Name {
		t.Fatalf("a repeat after the window writes %+v, want a new Event", second)
	}
	// The flush forgets what is quiet for the window.
	f.clock.Step(time.Minute)
	f.sink.flush()
	if n := f.sink.lru.Len(); n != 0 {
		t.Errorf("%d records kept after the window", n)
	}
}

func TestRecordsAreBounded(t *testing.T) {
	f := newFixture(t, Options{SeriesCapacity: 2})
	note := func(i int) string { return strings.Repeat("x", i) }
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(1))
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(1)) // count 2
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(1)) // count 3, owed
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(2))
	f.drain()
	// A third Event forgets the least recently seen (note 1), writing the
	// count it owed.
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(3))
	writes := f.drain()
	if len(writes) != 2 || writes[0].Series == nil || writes[0].Series.Count != 3 || writes[1].Note != note(3) {
		t.Fatalf("writes %+v, want the owed count 3 of the forgotten Event, then the new one", writes)
	}
	if n, m := f.sink.lru.Len(), len(f.sink.recent); n != 2 || m != 2 {
		t.Fatalf("records: list %d, map %d; want 2", n, m)
	}
	// Its repeat starts a new Event.
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "%s", note(1))
	if w := f.drain(); len(w) != 1 || w[0].Series != nil {
		t.Fatalf("a forgotten Event's repeat writes %+v, want a new Event", w)
	}
}

func TestAFullQueueDropsEventsWithoutWaiting(t *testing.T) {
	f := newFixture(t, Options{QueueSize: 2})
	for i := range 5 {
		f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "event %d", i)
	}
	if n := len(f.drain()); n != 2 {
		t.Fatalf("%d Events queued, want 2", n)
	}
	if got := f.written(metrics.EventDropped); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
}

func TestWritesRetryOnlyWhatMayPass(t *testing.T) {
	f := newFixture(t, Options{})
	fails := 2
	f.kube.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fails > 0 {
			fails--
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "transient")
	_, ctx := ktesting.NewTestContext(t)
	done := make(chan struct{})
	ev := f.drain()[0]
	go func() {
		defer close(done)
		f.sink.write(ctx, ev)
	}()
	for range 2 {
		waitForWaiter(t, f.clock)
		f.clock.Step(time.Minute)
	}
	<-done
	if got := f.written(metrics.EventCreated); got != 1 || len(f.events()) != 1 {
		t.Fatalf("created = %v, stored %d; want the Event written on the third try", got, len(f.events()))
	}

	// A refusal is not retried.
	f.kube.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "x", nil)
	})
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "refused")
	f.send()
	if got := f.written(metrics.EventFailed); got != 1 {
		t.Fatalf("failed = %v, want 1 with no retry", got)
	}
}

func waitForWaiter(t *testing.T, c *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the write never waited to retry")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunWritesAndStops(t *testing.T) {
	f := newFixture(t, Options{})
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		f.sink.Run(ctx)
	}()
	f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "one")
	deadline := time.Now().Add(10 * time.Second)
	for len(f.events()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run never wrote the Event")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-stopped
}

func TestEventsTheAPIServerWouldRefuseAreCut(t *testing.T) {
	f := newFixture(t, Options{})
	long := strings.Repeat("é", 700) // 1,400 bytes
	f.rec.Eventf(f.pod, nil, corev1.EventTypeWarning, "R", "A", "%s", long)
	ev := f.drain()[0]
	if len(ev.Note) > noteLimit || !strings.HasPrefix(long, ev.Note) || len(ev.Note) < noteLimit-1 {
		t.Errorf("note of %d bytes, want the first ≤%d bytes on a rune boundary", len(ev.Note), noteLimit)
	}
	name := eventName(strings.Repeat("a", 240)+"-b", 1<<60)
	if len(name) > 253 || strings.Contains(name, "-.") {
		t.Errorf("event name %q (%d bytes) is not a valid name", name, len(name))
	}
	f.rec.Eventf(f.pod, nil, "Critical", "R", "A", "unknown type")
	if w := f.drain(); len(w) != 0 {
		t.Errorf("an Event of an unknown type was queued: %+v", w)
	}
}

func TestTheWritesOfOneEventShareAWorker(t *testing.T) {
	f := newFixture(t, Options{Workers: 4})
	for i := range 32 {
		f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "event %d", i)
		f.rec.Eventf(f.pod, nil, corev1.EventTypeNormal, "R", "A", "event %d", i)
	}
	used := 0
	for _, writes := range f.sink.writes {
		n := len(writes)
		if n%2 != 0 {
			t.Errorf("a worker's queue holds %d writes: an Event and its series were split", n)
		}
		for range n / 2 {
			first, series := (<-writes).ev, (<-writes).ev
			if first.Series != nil || series.Series == nil || series.Name != first.Name {
				t.Errorf("queued %s then %s (series %v): want the Event, then its series", first.Name, series.Name, series.Series)
			}
		}
		if n > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("32 different Events used %d of 4 workers", used)
	}
}
