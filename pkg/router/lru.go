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
	"container/list"
	"context"
	"sync"
	"time"
)

// ttlLRU is a size-bounded cache whose entries also expire, used for
// authorization verdicts. Each entry carries its own expiry so errors can
// be cached for less time than answers.
type ttlLRU[K comparable, V any] struct {
	mu    sync.Mutex
	size  int
	ll    *list.List // front = most recently used
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

func newTTLLRU[K comparable, V any](size int) *ttlLRU[K, V] {
	return &ttlLRU[K, V]{size: size, ll: list.New(), items: make(map[K]*list.Element, size)}
}

// get returns the value for key unless it is missing or expired at now.
func (c *ttlLRU[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	it := el.Value.(*lruItem[K, V])
	if !now.Before(it.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(el)
	return it.value, true
}

// add stores value until expires, evicting the least recently used entry
// when full.
func (c *ttlLRU[K, V]) add(key K, value V, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		it := el.Value.(*lruItem[K, V])
		it.value, it.expires = value, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruItem[K, V]{key: key, value: value, expires: expires})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruItem[K, V]).key)
	}
}

func (c *ttlLRU[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
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
