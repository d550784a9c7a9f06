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
