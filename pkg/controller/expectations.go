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
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// ExpectationsTTL bounds how long an owner waits for watch events it
// expects: a lost event can delay an owner, never wedge it.
const ExpectationsTTL = 5 * time.Minute

// Expectations records, per owner key, the creates and deletes a controller
// has issued but its informers have not shown yet. The informer cache lags
// behind our own writes; a sync that ran in that gap would otherwise count
// too few (or too many) children and act again.
//
// Creates are counted (a generateName child has no key until it exists);
// deletes are tracked by child key, so a graceful delete counts once whether
// the informer first shows the deletion timestamp or the final removal.
type Expectations struct {
	clock clock.PassiveClock

	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	adds int
	// deletes is nil until a delete is expected: most records only count
	// creates.
	deletes   sets.Set[string]
	timestamp time.Time
}

// NewExpectations returns an empty store.
func NewExpectations(clk clock.PassiveClock) *Expectations {
	return &Expectations{clock: clk, m: map[string]*expectation{}}
}

func (e *Expectations) get(key string) *expectation {
	exp, ok := e.m[key]
	// An expired record says nothing any more (Satisfied ignores it), so a
	// new expectation starts afresh: neither a lost event's count nor the
	// keys of deletes never observed carry over, wedging the owner again
	// or piling up for as long as it lives.
	if !ok || e.clock.Since(exp.timestamp) > ExpectationsTTL {
		exp = &expectation{}
		e.m[key] = exp
	}
	exp.timestamp = e.clock.Now()
	return exp
}

// ExpectCreations records n creates about to be issued for key. Raise it
// before the first create, so an event for the new child can never arrive
// before the expectation it satisfies.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(key).adds += n
}

// TryExpectCreations atomically records n creates about to be issued for
// key, but only when nothing is pending: a controller that has not yet seen
// its previous writes must not act on a count that misses them. It reports
// whether the caller may create.
func (e *Expectations) TryExpectCreations(key string, n int) bool {
	if n <= 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok && (exp.adds > 0 || exp.deletes.Len() > 0) && e.clock.Since(exp.timestamp) <= ExpectationsTTL {
		return false
	}
	e.m[key] = &expectation{adds: n, timestamp: e.clock.Now()}
	return true
}

// LowerCreations lowers the pending creates of key by n, for creates that
// were never issued or failed.
func (e *Expectations) LowerCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok {
		exp.adds = max(exp.adds-n, 0)
		e.dropIfSatisfied(key, exp)
	}
}

// IsPendingDeletion reports whether child's delete was issued and not yet
// observed (within ExpectationsTTL).
func (e *Expectations) IsPendingDeletion(key, child string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.m[key]
	return ok && exp.deletes.Has(child) && e.clock.Since(exp.timestamp) <= ExpectationsTTL
}

// CreationObserved lowers the pending creates of key by one: the informer
// showed a new child, or a create failed (and so will never be shown).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok && exp.adds > 0 {
		exp.adds--
		e.dropIfSatisfied(key, exp)
	}
}

// dropIfSatisfied removes a record with nothing pending: no record says
// the same to every reader, and a Sandbox controller that created one Pod
// for each of 3000 Sandboxes would otherwise keep 3000 empty records for
// as long as they live. Callers hold mu.
func (e *Expectations) dropIfSatisfied(key string, exp *expectation) {
	if exp.adds <= 0 && exp.deletes.Len() == 0 {
		delete(e.m, key)
	}
}

// ExpectDeletions records deletes about to be issued for the given child
// keys (namespace/name).
func (e *Expectations) ExpectDeletions(key string, children ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := e.get(key)
	if exp.deletes == nil {
		exp.deletes = sets.New[string]()
	}
	exp.deletes.Insert(children...)
}

// DeletionObserved records that child is gone or going (deletion
// timestamp set), or that its delete failed.
func (e *Expectations) DeletionObserved(key, child string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok {
		exp.deletes.Delete(child)
		e.dropIfSatisfied(key, exp)
	}
}

// Satisfied reports whether key has nothing pending, or its record is older
// than ExpectationsTTL, or there is no record.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.m[key]
	if !ok {
		return true
	}
	if exp.adds <= 0 && exp.deletes.Len() == 0 {
		return true
	}
	return e.clock.Since(exp.timestamp) > ExpectationsTTL
}

// Pending returns the outstanding creates and deletes of key, for logs and
// tests.
func (e *Expectations) Pending(key string) (adds int, deletes []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.m[key]
	if !ok {
		return 0, nil
	}
	return exp.adds, sets.List(exp.deletes)
}

// Forget drops the record of key, when the owner is gone.
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
