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

package sandbox

import (
	"sync"
	"time"
)

// maxWriteBehind bounds the deferral: the eviction hint must leave a
// claimed sandbox's Pod well before the cluster autoscaler's next scan
// (10 s or more apart).
const maxWriteBehind = time.Second

// writeBehind defers the metadata patch of an already owned Pod
// (--sandbox-write-behind-window, off by default), so that a burst of
// metadata changes to one Sandbox costs one patch. Only timestamps are
// kept, never a payload: the deferred pass recomputes the desired metadata
// from the informers. Losing the map (a restart) only restarts a window.
type writeBehind struct {
	window time.Duration

	mu    sync.Mutex
	first map[string]time.Time // when a pending patch was first seen, by key
}

func newWriteBehind(window time.Duration) *writeBehind {
	return &writeBehind{window: min(window, maxWriteBehind), first: map[string]time.Time{}}
}

// wait reports how much longer the patch of key should wait; zero means
// write it now.
func (w *writeBehind) wait(key string, now time.Time) time.Duration {
	if w.window <= 0 {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	first, ok := w.first[key]
	if !ok {
		w.first[key] = now
		return w.window
	}
	return max(0, first.Add(w.window).Sub(now))
}

// remaining is the wait of a pending deferral, or zero.
func (w *writeBehind) remaining(key string, now time.Time) time.Duration {
	if w.window <= 0 {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	first, ok := w.first[key]
	if !ok {
		return 0
	}
	return max(time.Millisecond, first.Add(w.window).Sub(now))
}

// done forgets key: its patch was written, nothing is pending, or the
// Sandbox is gone.
func (w *writeBehind) done(key string) {
	if w.window <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.first, key)
}
