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
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func records(e *Expectations) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.m)
}

func TestExpectationsCreatesAndDeletes(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	e := NewExpectations(clk)
	e.ExpectCreations("ns/a", 2)
	if e.Satisfied("ns/a") {
		t.Fatal("satisfied with 2 creates pending")
	}
	if e.TryExpectCreations("ns/a", 1) {
		t.Fatal("TryExpectCreations allowed a create while 2 are pending")
	}
	e.CreationObserved("ns/a")
	if e.Satisfied("ns/a") {
		t.Fatal("satisfied with 1 create pending")
	}
	e.CreationObserved("ns/a")
	if !e.Satisfied("ns/a") {
		t.Fatal("not satisfied after both creates were seen")
	}

	e.ExpectDeletions("ns/b", "ns/x", "ns/y")
	if !e.IsPendingDeletion("ns/b", "ns/x") || e.Satisfied("ns/b") {
		t.Fatal("the expected deletes are not pending")
	}
	e.DeletionObserved("ns/b", "ns/x")
	e.DeletionObserved("ns/b", "ns/x") // the final removal after the deletion timestamp
	if e.IsPendingDeletion("ns/b", "ns/x") || !e.IsPendingDeletion("ns/b", "ns/y") {
		t.Fatal("the observed delete is still pending, or the other is not")
	}
	e.DeletionObserved("ns/b", "ns/y")
	if !e.Satisfied("ns/b") {
		t.Fatal("not satisfied after every delete was seen")
	}

	// A lost event never wedges an owner: the record expires.
	e.ExpectCreations("ns/c", 1)
	clk.SetTime(clk.Now().Add(ExpectationsTTL + time.Second))
	if !e.Satisfied("ns/c") || !e.TryExpectCreations("ns/c", 1) {
		t.Fatal("an expired record still holds the owner back")
	}
}

// A satisfied record is dropped: a controller that created one child for
// each of thousands of owners keeps no record for any of them.
func TestExpectationsKeepNoSatisfiedRecord(t *testing.T) {
	e := NewExpectations(clocktesting.NewFakePassiveClock(time.Now()))
	for _, key := range []string{"ns/a", "ns/b", "ns/c"} {
		e.ExpectCreations(key, 1)
	}
	e.CreationObserved("ns/a")
	e.LowerCreations("ns/b", 1)
	e.ExpectDeletions("ns/c", "ns/child")
	e.CreationObserved("ns/c")
	if got := records(e); got != 1 {
		t.Fatalf("%d records, want 1 (ns/c still expects a delete)", got)
	}
	e.DeletionObserved("ns/c", "ns/child")
	if got := records(e); got != 0 {
		t.Fatalf("%d records after everything was seen, want 0", got)
	}
}
