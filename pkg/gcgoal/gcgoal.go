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

// Package gcgoal sets the Go collector's target (GOGC) after every
// collection so that the heap may grow by a fraction of what was live, but
// never by less than a fixed number of bytes.
//
// A fixed GOGC makes the collector's memory overhead proportional to the
// live heap and its CPU proportional to the allocation rate divided by
// GOGC. The controller's live heap is mostly its informer caches: with
// thousands of Sandboxes a low GOGC keeps the resident set close to them,
// but in a small cluster the same low GOGC runs the collector every few
// megabytes of allocation for a saving of a few megabytes. A headroom of
// max(Fraction × live, Min) behaves like GOGC = 100 × Fraction on a large
// heap and like a much higher GOGC on a small one.
package gcgoal

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Headroom is how far the heap may grow past what the last collection
// found reachable before the next collection starts.
type Headroom struct {
	// Fraction of the scannable memory (live heap, goroutine stacks and
	// globals, what GOGC is a percentage of): 0.5 is GOGC 50.
	Fraction float64
	// Min is the least headroom in bytes, whatever the live heap.
	Min uint64
	// MaxPercent caps GOGC while the live heap is tiny (at start). Keep
	// it low: the runtime never collects below a heap of 4 MiB × GOGC /
	// 100, so a high cap lets a starting process grow that far first.
	MaxPercent int
}

// Percent is the GOGC that gives this headroom over scannable bytes.
func (h Headroom) Percent(scannable uint64) int {
	floor := int(math.Ceil(100 * h.Fraction))
	if scannable == 0 {
		return max(floor, h.MaxPercent)
	}
	p := int(math.Ceil(100 * float64(h.Min) / float64(scannable)))
	return max(floor, min(p, h.MaxPercent))
}

// The runtime's figures from the last completed collection; the heap goal
// is live + (live + stack + globals) × GOGC / 100.
var sampleNames = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Tuner sets GOGC after each collection; see Start.
type Tuner struct {
	headroom Headroom
	samples  []metrics.Sample
	set      int // the GOGC last set, 0 before the first
	stopped  atomic.Bool
}

// Start sets GOGC for the current heap at once and again after every
// collection until Stop. The environment's GOMEMLIMIT still applies: the
// runtime collects at the lower of the two goals. Callers that honour a
// GOGC from the environment should not start a Tuner.
func Start(h Headroom) *Tuner {
	t := &Tuner{headroom: h, samples: make([]metrics.Sample, len(sampleNames))}
	for i, name := range sampleNames {
		t.samples[i].Name = name
	}
	t.adjust()
	t.arm()
	return t
}

// Stop ends the adjustments after the next collection; GOGC keeps the
// value last set.
func (t *Tuner) Stop() { t.stopped.Store(true) }

// sentinel is allocated unreachable so that its finalizer runs after the
// next collection. It must not be a tiny allocation (smaller than 16 bytes
// without pointers), whose finalizer may never run.
type sentinel struct{ _ [32]byte }

// arm has adjust run after the next collection, and arm again then. The
// runtime runs finalizers one at a time on its finalizer goroutine, so
// adjust never runs concurrently with itself.
func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

func (t *Tuner) adjust() {
	metrics.Read(t.samples)
	var scannable uint64
	for _, s := range t.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			scannable += s.Value.Uint64()
		}
	}
	if p := t.headroom.Percent(scannable); p != t.set {
		debug.SetGCPercent(p)
		t.set = p
	}
}
