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

package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// WrittenStatus remembers the last status a controller wrote for each
// object, with the resourceVersion its cached copy had then. A pass that
// runs again before the informer shows that write (another event woke it)
// would compare against the stale cached status and send the same patch a
// second time; measured on claims at 10/s, one in five. While the cache
// still shows the resourceVersion the write was computed from, an equal
// status is known to be written already.
type WrittenStatus struct {
	mu   sync.Mutex
	last map[types.UID]writtenStatus
}

type writtenStatus struct {
	baseResourceVersion string
	status              any
}

// NewWrittenStatus returns an empty record.
func NewWrittenStatus() *WrittenStatus {
	return &WrittenStatus{last: map[types.UID]writtenStatus{}}
}

// AlreadyWritten reports whether status was written from the cached
// object at resourceVersion rv and the cache has not moved on since. Once
// it has, the record is dropped and the cache is the truth again.
func (w *WrittenStatus) AlreadyWritten(uid types.UID, rv string, status any) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.last[uid]
	if !ok {
		return false
	}
	if rec.baseResourceVersion != rv {
		delete(w.last, uid)
		return false
	}
	return equality.Semantic.DeepEqual(rec.status, status)
}

// Last returns the status written from the cached object at
// resourceVersion rv while the cache has not moved on since: what the API
// server holds, newer than the cache.
func (w *WrittenStatus) Last(uid types.UID, rv string) (any, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.last[uid]
	if !ok || rec.baseResourceVersion != rv {
		return nil, false
	}
	return rec.status, true
}

// Wrote records status as written from the cached object at rv.
func (w *WrittenStatus) Wrote(uid types.UID, rv string, status any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[uid] = writtenStatus{baseResourceVersion: rv, status: status}
}

// Forget drops the record of a deleted object.
func (w *WrittenStatus) Forget(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, uid)
}

// Len is the number of objects with a record.
func (w *WrittenStatus) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.last)
}
