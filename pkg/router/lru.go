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
	"sync"
	"time"

	utilcache "k8s.io/apimachinery/pkg/util/cache"
)

// expiringLRU caches authorization verdicts: apimachinery's LRUExpireCache
// (a size bound evicting the least recently used entry, a TTL per entry so
// errors can be cached for less time than answers, and the authorizer's
// clock) with typed keys and values.
type expiringLRU[K comparable, V any] struct {
	c *utilcache.LRUExpireCache
}

// clockFunc is a func() time.Time as LRUExpireCache's Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// newExpiringLRU panics unless size > 0, as LRUExpireCache does; the
// options' defaults make it so.
func newExpiringLRU[K comparable, V any](size int, now func() time.Time) expiringLRU[K, V] {
	return expiringLRU[K, V]{c: utilcache.NewLRUExpireCacheWithClock(size, clockFunc(now))}
}

// get returns the value for key unless it is missing or expired.
func (l expiringLRU[K, V]) get(key K) (V, bool) {
	v, ok := l.c.Get(key)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

// add stores value for ttl from now, evicting the least recently used
// entry when full. LRUExpireCache still returns an entry at the very instant
// its TTL ends; one nanosecond less makes a verdict end exactly when the TTL
// (or the token's expiry, which the JWT check refuses at that instant) does.
func (l expiringLRU[K, V]) add(key K, value V, ttl time.Duration) {
	l.c.Add(key, value, ttl-time.Nanosecond)
}

// flightGroup runs one call per key at a time and hands its result to
// every caller that asked meanwhile: a burst of requests with the same
// unknown token costs one review. golang.org/x/sync/singleflight would do,
// but it is only an indirect dependency and untyped; this is the part we
// need.
type flightGroup[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flight[V]
}

type flight[V any] struct {
	done chan struct{}
	val  V
}

// do returns fn's result for key, running fn unless a call for key is in
// flight. A waiter whose ctx ends stops waiting (the call goes on for the
// others); fn must not depend on any one caller's cancellation.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, fn func() V) (V, error) {
	g.mu.Lock()
	if f, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.val, nil
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	if g.calls == nil {
		g.calls = map[K]*flight[V]{}
	}
	f := &flight[V]{done: make(chan struct{})}
	g.calls[key] = f
	g.mu.Unlock()
	defer func() {
		// Deferred so a panicking fn never leaves waiters stuck.
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val = fn()
	return f.val, nil
}
