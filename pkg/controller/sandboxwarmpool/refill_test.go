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
	"testing"
	"time"
)

func TestReplenishDelay(t *testing.T) {
	r := newRefillShaper(10*time.Second, 0)
	t0 := time.Unix(1000, 0)
	if h := r.hold("p", 3, 5, t0); h != 0 {
		t.Fatalf("first observation held %s; it never holds", h)
	}
	// Two members claimed: the count drops, the delay arms.
	if h := r.hold("p", 1, 5, t0.Add(time.Second)); h != 10*time.Second {
		t.Fatalf("after a drop: hold %s, want 10s", h)
	}
	// No further drop: the hold runs down.
	if h := r.hold("p", 1, 5, t0.Add(4*time.Second)); h != 7*time.Second {
		t.Fatalf("hold %s, want 7s", h)
	}
	// Another drop re-arms it.
	if h := r.hold("p", 0, 5, t0.Add(5*time.Second)); h != 10*time.Second {
		t.Fatalf("after a second drop: hold %s, want 10s", h)
	}
	// Expired: creates may go; the pool's own creates are not a drop.
	if h := r.hold("p", 0, 5, t0.Add(16*time.Second)); h != 0 {
		t.Fatalf("hold %s after the delay, want 0", h)
	}
	r.created("p", 5)
	if h := r.hold("p", 5, 5, t0.Add(17*time.Second)); h != 0 {
		t.Fatalf("full pool held %s", h)
	}
	if h := newRefillShaper(0, 0).hold("p", 0, 5, t0); h != 0 {
		t.Fatalf("delay 0 held %s", h)
	}
}

func TestRefillRateTokenBucket(t *testing.T) {
	r := newRefillShaper(0, 2) // 2 creates/s, bucket of 2, starts full
	t0 := time.Unix(1000, 0)
	if g, _ := r.grant("p", 5, t0); g != 2 {
		t.Fatalf("first grant %d, want the full bucket of 2", g)
	}
	g, wait := r.grant("p", 5, t0)
	if g != 0 || wait != 500*time.Millisecond {
		t.Fatalf("empty bucket: grant %d wait %s, want 0 and 500ms", g, wait)
	}
	if g, _ := r.grant("p", 5, t0.Add(750*time.Millisecond)); g != 1 {
		t.Fatalf("after 750ms: grant %d, want 1", g)
	}
	// Refused by the expectations gate: the token comes back.
	r.refund("p", 1)
	if g, _ := r.grant("p", 5, t0.Add(750*time.Millisecond)); g != 1 {
		t.Fatalf("after a refund: grant %d, want 1", g)
	}
	// Never more than the bucket holds, however long it rested.
	if g, _ := r.grant("p", 50, t0.Add(time.Hour)); g != 2 {
		t.Fatalf("after an hour: grant %d, want the capacity 2", g)
	}
	if g, w := newRefillShaper(0, 0).grant("p", 50, t0); g != 50 || w != 0 {
		t.Fatalf("unlimited: grant %d wait %s", g, w)
	}
	// Pools have separate buckets.
	if g, _ := r.grant("q", 5, t0.Add(time.Hour)); g != 2 {
		t.Fatalf("another pool: grant %d, want 2", g)
	}
}
