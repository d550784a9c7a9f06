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
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
)

func TestSpacing(t *testing.T) {
	s := newSpacing(100 * time.Millisecond)
	t0 := time.Unix(1000, 0)
	if w := s.remaining("p", t0); w != 0 {
		t.Fatalf("never marked: remaining %s", w)
	}
	s.mark("p", t0)
	if w := s.remaining("p", t0.Add(30*time.Millisecond)); w != 70*time.Millisecond {
		t.Errorf("30ms after the mark: remaining %s, want 70ms", w)
	}
	if w := s.remaining("other", t0); w != 0 {
		t.Errorf("another key: remaining %s", w)
	}
	if w := s.remaining("p", t0.Add(100*time.Millisecond)); w != 0 {
		t.Errorf("at the interval's end: remaining %s", w)
	}
	s.forget("p")
	if w := s.remaining("p", t0); w != 0 {
		t.Errorf("forgotten: remaining %s", w)
	}
	off := newSpacing(0)
	off.mark("p", t0)
	if w := off.remaining("p", t0); w != 0 {
		t.Errorf("no interval: remaining %s", w)
	}
}

// Members' events within passInterval of a pass share one later pass, as
// does the pool's status update; a new generation of the pool is queued
// at once.
func TestMemberEventsShareASpacedPass(t *testing.T) {
	f := newFixture(t)
	f.seed(newPool(0, ""), newTemplate("python"))
	key := cache.ObjectName{Namespace: ns, Name: pool}

	f.c.enqueueSpaced(key)
	if n := f.c.queue.Len(); n != 1 {
		t.Fatalf("a member's event with no pass before queued %d keys, want 1", n)
	}
	f.drainQueue()

	f.run() // a pass starts at the fake clock's now
	for range 3 {
		f.clock.Step(10 * time.Millisecond)
		f.c.enqueueSpaced(key)
	}
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("members' events 10-30ms after a pass queued %d keys at once, want them held to the interval's end", n)
	}
	f.clock.Step(passInterval - 30*time.Millisecond)
	if err := wait.PollUntilContextTimeout(t.Context(), time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		return f.c.queue.Len() > 0, nil
	}); err != nil {
		t.Fatalf("the held pass was not queued at the interval's end")
	}
	if n := f.c.queue.Len(); n != 1 {
		t.Errorf("three held events queued %d keys, want one pass", n)
	}
	f.drainQueue()

	f.run()
	old := newPool(0, "")
	statusOnly := old.DeepCopy()
	statusOnly.Status.Replicas = 1
	f.c.onPoolUpdated(old, statusOnly)
	if n := f.c.queue.Len(); n != 0 {
		t.Errorf("the pool's status update right after a pass queued %d keys at once, want it spaced", n)
	}
	scaled := old.DeepCopy()
	scaled.Generation++
	f.c.onPoolUpdated(old, scaled)
	if n := f.c.queue.Len(); n != 1 {
		t.Errorf("the pool's new generation right after a pass queued %d keys, want it at once", n)
	}
}

// A pass's own timer is never sooner than passInterval after it started:
// a partial refill grant (rate 20/s: 50 ms) waits for the interval.
func TestPassRequeueSpaced(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxRefillRate = 20 })
	f.seed(newPool(30, ""), newTemplate("python"))
	if requeue := f.run(); requeue != passInterval {
		t.Errorf("requeue = %s after a partial grant, want passInterval (%s)", requeue, passInterval)
	}
}

func (f *fixture) drainQueue() {
	f.t.Helper()
	for f.c.queue.Len() > 0 {
		item, _ := f.c.queue.Get()
		f.c.queue.Done(item)
	}
}
