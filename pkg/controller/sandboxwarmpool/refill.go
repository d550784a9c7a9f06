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
	"math"
	"sync"
	"time"
)

// refillShaper holds back and paces a pool's refill (both off by default):
// a replenish delay after members leave, so a burst of claims is not
// chased create by create, and a per-pool token bucket on creates, so one
// drained pool cannot monopolise the API server. State is per pool and in
// memory; a restart starts afresh, which only ever lets a refill start
// sooner.
type refillShaper struct {
	delay time.Duration
	rate  float64 // creates per second; 0 means unlimited

	mu    sync.Mutex
	pools map[string]*refillState
}

type refillState struct {
	// Replenish delay.
	lastMembers int
	deferUntil  time.Time
	// Token bucket.
	tokens float64
	last   time.Time
}

func newRefillShaper(delay time.Duration, rate float64) *refillShaper {
	return &refillShaper{delay: delay, rate: rate, pools: map[string]*refillState{}}
}

func (r *refillShaper) state(key string, now time.Time) (*refillState, bool) {
	s, ok := r.pools[key]
	if !ok {
		s = &refillState{tokens: max(1, r.rate), last: now}
		r.pools[key] = s
	}
	return s, ok
}

// hold observes the pool's member count and returns how long creates must
// still wait: the delay re-arms every time the count drops below what it
// was, and clears once the pool is full. The first observation of a pool
// (new, or after a restart) never holds.
func (r *refillShaper) hold(key string, current, desired int, now time.Time) time.Duration {
	if r.delay <= 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, seen := r.state(key, now)
	dropped := seen && current < s.lastMembers
	s.lastMembers = current
	switch {
	case current >= desired:
		s.deferUntil = time.Time{}
	case dropped:
		s.deferUntil = now.Add(r.delay)
	}
	if wait := s.deferUntil.Sub(now); wait > 0 {
		return wait
	}
	return 0
}

// grant takes up to want create tokens. When it grants none, wait is when
// the next token is due.
func (r *refillShaper) grant(key string, want int, now time.Time) (granted int, wait time.Duration) {
	if r.rate <= 0 {
		return want, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, _ := r.state(key, now)
	capacity := max(1, r.rate)
	s.tokens = min(capacity, s.tokens+r.rate*now.Sub(s.last).Seconds())
	s.last = now
	granted = min(want, int(math.Floor(s.tokens)))
	s.tokens -= float64(granted)
	if granted == 0 {
		wait = time.Duration(math.Ceil((1 - s.tokens) / r.rate * float64(time.Second)))
	}
	return granted, wait
}

// refund returns tokens for creates that were never attempted (the
// expectations gate refused them); failed creates are not refunded.
func (r *refillShaper) refund(key string, n int) {
	if r.rate <= 0 || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.pools[key]; ok {
		s.tokens = min(max(1, r.rate), s.tokens+float64(n))
	}
}

// created counts successful creates towards the member count the delay
// compares against, so the pool's own refill never looks like a drop.
func (r *refillShaper) created(key string, n int) {
	if r.delay <= 0 || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.pools[key]; ok {
		s.lastMembers += n
	}
}

func (r *refillShaper) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pools, key)
}
