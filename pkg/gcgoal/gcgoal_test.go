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

package gcgoal

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	h := Headroom{Fraction: 0.5, Min: 16 * mib, MaxPercent: 800}
	for _, tc := range []struct {
		scannable uint64
		want      int
	}{
		{0, 800},          // nothing measured yet: the cap
		{1 * mib, 800},    // 1600 capped
		{4 * mib, 400},    // 16 MiB over 4
		{16 * mib, 100},   // Min equals the heap
		{20 * mib, 80},    // Min still larger than half
		{32 * mib, 50},    // from here on Fraction
		{3000 * mib, 50},  // a large cluster: Fraction, never less
		{17 * mib, 95},    // rounded up, so the headroom is at least Min
		{24*mib + 1, 67},  // just over 24 MiB
		{33 * mib, 50},    // 48.5 would be below the floor
		{8*mib - 1, 201},  // ceil, not floor
		{10 * mib, 160},   // the controller at 10 claims/s, pool 50
		{25 * mib, 64},    // the controller with 3000 Sandboxes
		{64 * mib, 50},    // Fraction
		{1 << 40, 50},     // no overflow
		{3, 800},          // tiny
		{16*mib + 1, 100}, // ceil of 99.99…
	} {
		if got := h.Percent(tc.scannable); got != tc.want {
			t.Errorf("Percent(%d) = %d, want %d", tc.scannable, got, tc.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until GOGC is want (the tuner runs after a
// collection, on the finalizer goroutine), or fails after 10 s.
func waitGOGC(t *testing.T, want func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !want(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d after 10 s of collections, want %s", gogc(), what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

var ballast []byte

// The tuner follows the live heap: a high GOGC while it is small, the
// fraction's once a large ballast is reachable, high again once it is
// gone; after Stop it no longer changes GOGC.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	ballast = nil
	runtime.GC() // the live heap Start reads is the last collection's

	h := Headroom{Fraction: 0.5, Min: 32 * mib, MaxPercent: 700}
	tuner := Start(h)
	stopped := false
	defer func() {
		if !stopped {
			tuner.Stop()
		}
	}()
	// The test binary's heap is a few MiB: 32 MiB over it is above 700.
	if got := gogc(); got != 700 {
		t.Fatalf("GOGC = %d right after Start with a small heap, want the cap 700", got)
	}

	ballast = make([]byte, 256*mib)
	waitGOGC(t, func(p int) bool { return p == 50 }, "50 with 256 MiB live")

	ballast = nil
	waitGOGC(t, func(p int) bool { return p == 700 }, "700 again once the ballast is gone")

	tuner.Stop()
	stopped = true
	runtime.GC() // the finalizer armed before Stop sees it and ends the chain
	runtime.GC()
	debug.SetGCPercent(123)
	ballast = make([]byte, 256*mib)
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	ballast = nil
	runtime.GC()
	if got := gogc(); got != 123 {
		t.Errorf("GOGC = %d after Stop and collections with 256 MiB live, want 123 as set", got)
	}
}
