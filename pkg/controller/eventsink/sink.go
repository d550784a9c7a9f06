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

// Package eventsink writes a controller's events.k8s.io/v1 Events with
// bounded memory and a fixed number of goroutines.
//
// client-go's events broadcaster keeps every Event it sent for six to
// twelve minutes (to find repeats) and starts a goroutine per Event that
// retries for up to two minutes. At 25 claims a second that is ~18,000
// Events and their goroutines in the heap, and a slow API server makes
// it grow without bound. The sink keeps instead:
//   - a queue of at most QueueSize writes; an Event that finds it full is
//     dropped and counted (agent_sandbox_event_writes_total{result="dropped"}),
//   - Workers goroutines that write them,
//   - at most SeriesCapacity records of recent Events (a hash, the Event's
//     name and counts; ~100 bytes each), so a repeat becomes a series
//     update of the first Event rather than a new Event.
//
// Series follow the events.k8s.io semantics: the first repeat is written
// at once (series.count 2), later repeats at most once per SeriesFlush
// per Event, and an Event not seen for SeriesWindow ends its series.
package eventsink

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	eventsclient "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/events/v1"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

// Options tune a Sink; zero values take the defaults.
type Options struct {
	// Controller labels the sink's metrics.
	Controller string
	Metrics    *metrics.EventMetrics
	// QueueSize bounds the Events waiting to be written (default 1000,
	// client-go's broadcaster queue).
	QueueSize int
	// Workers write Events concurrently (default 8). A write takes a few
	// milliseconds on an idle API server and 100-200 ms on a saturated
	// one, where 8 still keep up with 40-80 Events a second, more than
	// one Event per claim at the claim rates such a server serves.
	Workers int
	// SeriesCapacity bounds the recent Events remembered to find repeats
	// (default 4096, core/v1 record's cache size). The least recently seen
	// is forgotten first; its repeat then starts a new Event.
	SeriesCapacity int
	// SeriesFlush is how often counts of repeats after the first are
	// written (default 1 minute).
	SeriesFlush time.Duration
	// SeriesWindow: an Event not repeated for this long is forgotten, and
	// a later repeat starts a new Event (default 6 minutes, client-go's).
	SeriesWindow time.Duration
	Clock        clock.WithTicker
}

func (o *Options) defaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.SeriesCapacity <= 0 {
		o.SeriesCapacity = 4096
	}
	if o.SeriesFlush <= 0 {
		o.SeriesFlush = time.Minute
	}
	if o.SeriesWindow <= 0 {
		o.SeriesWindow = 6 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Retries of a write that failed for a reason that may pass (the API
// server unreachable, overloaded or timing out): 5 tries over ~15 s.
const (
	maxTries     = 5
	firstBackoff = time.Second
	tryTimeout   = 30 * time.Second
)

// Sink queues and writes Events. Build it with New, hand its Recorders
// to the code that emits Events and call Run once.
type Sink struct {
	client eventsclient.EventsV1Interface
	opts   Options
	// writes has a queue per worker; an Event and its series writes go
	// to the same one (by key), so they are written in order.
	writes []chan queued
	seed   maphash.Seed

	mu sync.Mutex
	// recent maps an Event's identity (hash of everything but its time
	// and name) to the record of its last occurrence; lru orders the
	// records, most recently seen first.
	recent map[uint64]*list.Element
	lru    list.List
}

// occurrence is what the sink remembers of a recent Event: enough to
// write its series, not the Event.
type occurrence struct {
	key             uint64
	namespace, name string
	first, last     time.Time
	count           int32
	// latest is the last repeat while its count is not written yet
	// (dirty): the series write recreates the Event from it if the first
	// one is gone (dropped, or expired on the server).
	latest *eventsv1.Event
}

// queued is an Event to write and its key.
type queued struct {
	ev  *eventsv1.Event
	key uint64
}

// New returns a Sink that writes through client.
func New(client eventsclient.EventsV1Interface, opts Options) *Sink {
	opts.defaults()
	s := &Sink{
		client: client,
		opts:   opts,
		seed:   maphash.MakeSeed(),
		recent: map[uint64]*list.Element{},
	}
	perWorker := max(1, opts.QueueSize/opts.Workers)
	for range opts.Workers {
		s.writes = append(s.writes, make(chan queued, perWorker))
	}
	return s
}

// Run writes queued Events until ctx is done, then returns once its
// goroutines have stopped. Events still queued then are not written.
func (s *Sink) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, writes := range s.writes {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case q := <-writes:
					s.write(ctx, q.ev)
				}
			}
		})
	}
	wg.Go(func() {
		t := s.opts.Clock.NewTicker(s.opts.SeriesFlush)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				s.flush()
			}
		}
	})
	wg.Wait()
}

// record takes a new Event (its EventTime is when it happened): the
// first of its kind is queued for creation, a repeat counts in the
// series of the first. It queues under s.mu (never blocking), so the
// writes of one Event reach their worker in order.
func (s *Sink) record(ev *eventsv1.Event) {
	key := s.key(ev)
	now := ev.EventTime.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.recent[key]; ok {
		o := el.Value.(*occurrence)
		if now.Sub(o.last) < s.opts.SeriesWindow {
			o.count++
			o.last = now
			s.lru.MoveToFront(el)
			if o.count == 2 {
				// The first repeat is written at once, so the Event
				// shows it is a series before the flush.
				s.enqueue(o.seriesEvent(ev))
			} else {
				o.latest = ev
			}
			return
		}
		// The series ended: a repeat now starts a new Event.
		s.forget(el)
	}
	if s.lru.Len() >= s.opts.SeriesCapacity {
		s.forget(s.lru.Back())
	}
	s.recent[key] = s.lru.PushFront(&occurrence{key: key, namespace: ev.Namespace, name: ev.Name, first: now, last: now, count: 1})
	s.enqueue(queued{ev: ev, key: key})
}

// forget drops a record, queueing the count it owes; s.mu is held.
func (s *Sink) forget(el *list.Element) {
	o := el.Value.(*occurrence)
	delete(s.recent, o.key)
	s.lru.Remove(el)
	if o.latest != nil {
		s.enqueue(o.seriesEvent(o.latest))
	}
}

// flush queues the counts not written yet and forgets Events whose
// series ended.
func (s *Sink) flush() {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for el := s.lru.Front(); el != nil; {
		next := el.Next()
		o := el.Value.(*occurrence)
		if o.latest != nil {
			s.enqueue(o.seriesEvent(o.latest))
		} else if now.Sub(o.last) >= s.opts.SeriesWindow {
			s.forget(el)
		}
		el = next
	}
}

// seriesEvent is the first Event of o as it is now: its name and time,
// the repeat's content (the same but for time) and the series so far.
// s.mu is held.
func (o *occurrence) seriesEvent(repeat *eventsv1.Event) queued {
	ev := repeat.DeepCopy()
	ev.Name, ev.Namespace = o.name, o.namespace
	ev.EventTime = metav1.NewMicroTime(o.first)
	ev.Series = &eventsv1.EventSeries{Count: o.count, LastObservedTime: metav1.NewMicroTime(o.last)}
	o.latest = nil
	return queued{ev: ev, key: o.key}
}

// enqueue hands an Event to its worker, or drops it when the worker's
// queue is full: the controller must never wait on Events. s.mu is held.
func (s *Sink) enqueue(q queued) {
	select {
	case s.writes[q.key%uint64(len(s.writes))] <- q:
	default:
		ev := q.ev
		s.opts.Metrics.Inc(s.opts.Controller, metrics.EventDropped)
		klog.Background().V(2).Info("Dropped an Event: the queue of Events to write is full",
			"controller", s.opts.Controller, "object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", ev.Reason)
	}
}

// key identifies an Event up to its time and name: a repeat has the same
// key. The hash is seeded per process, so no tenant can choose names
// whose Events count in another's series.
func (s *Sink) key(ev *eventsv1.Event) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	str := func(v string) {
		_, _ = h.WriteString(v)
		_ = h.WriteByte(0)
	}
	for _, v := range []string{ev.Namespace, ev.Type, ev.Reason, ev.Action, ev.Note, ev.ReportingController, ev.ReportingInstance} {
		str(v)
	}
	ref := func(kind, apiVersion, namespace, name string, uid types.UID, fieldPath string) {
		for _, v := range []string{kind, apiVersion, namespace, name, string(uid), fieldPath} {
			str(v)
		}
	}
	r := ev.Regarding
	ref(r.Kind, r.APIVersion, r.Namespace, r.Name, r.UID, r.FieldPath)
	if rel := ev.Related; rel != nil {
		_ = h.WriteByte(1)
		ref(rel.Kind, rel.APIVersion, rel.Namespace, rel.Name, rel.UID, rel.FieldPath)
	}
	return h.Sum64()
}

// write sends ev, retrying while the failure may pass.
func (s *Sink) write(ctx context.Context, ev *eventsv1.Event) {
	logger := klog.FromContext(ctx)
	backoff := firstBackoff
	for try := 1; ; try++ {
		err := s.writeOnce(ctx, ev)
		if err == nil {
			result := metrics.EventCreated
			if ev.Series != nil {
				result = metrics.EventSeries
			}
			s.opts.Metrics.Inc(s.opts.Controller, result)
			return
		}
		if !retriable(err) || try == maxTries {
			s.opts.Metrics.Inc(s.opts.Controller, metrics.EventFailed)
			logger.Error(err, "Unable to write Event", "controller", s.opts.Controller,
				"object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", ev.Reason, "tries", try)
			return
		}
		// Jittered, so controllers do not retry in step after an outage.
		wait := backoff + rand.N(backoff/2)
		backoff *= 2
		select {
		case <-ctx.Done():
			return
		case <-s.opts.Clock.After(wait):
		}
	}
}

// writeOnce creates ev, or patches its series onto the Event it repeats;
// a series whose Event is gone is created whole.
func (s *Sink) writeOnce(ctx context.Context, ev *eventsv1.Event) error {
	ctx, cancel := context.WithTimeout(ctx, tryTimeout)
	defer cancel()
	events := s.client.Events(ev.Namespace)
	if ev.Series != nil {
		patch, err := json.Marshal(map[string]any{"series": ev.Series})
		if err != nil {
			return err
		}
		_, err = events.Patch(ctx, ev.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	_, err := events.Create(ctx, ev, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if ev.Series != nil {
			// Created meanwhile (the writes of one Event are ordered, so
			// by a try that timed out after it was stored): patch it on
			// the next try.
			return errRetrySeries
		}
		// An earlier try that timed out was stored after all.
		return nil
	}
	return err
}

// errRetrySeries: the Event of a series was created meanwhile; its
// patch is worth another try.
var errRetrySeries = errors.New("the Event of the series was created meanwhile")

// retriable says whether a write that failed with err may succeed later:
// not when the API server answered that it refuses the Event.
func retriable(err error) bool {
	if errors.Is(err, errRetrySeries) {
		return true
	}
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) {
		return true
	}
	_, isStatus := err.(apierrors.APIStatus)
	return !isStatus
}
