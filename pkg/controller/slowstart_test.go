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
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestSlowStartBatch(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		count, failAfter  int // calls numbered from 1; failAfter 0 never fails
		wantOK, wantCalls int
		wantErr           bool
	}{
		"all succeed":          {count: 10, wantOK: 10, wantCalls: 10},
		"zero":                 {count: 0},
		"first call fails":     {count: 10, failAfter: 1, wantOK: 0, wantCalls: 1, wantErr: true},
		"fails in third batch": {count: 20, failAfter: 4, wantOK: 3, wantCalls: 7, wantErr: true}, // batches 1, 2, 4
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := SlowStartBatch(context.Background(), tc.count, 1, func(context.Context) error {
				n := calls.Add(1)
				if tc.failAfter > 0 && int(n) >= tc.failAfter {
					return boom
				}
				return nil
			})
			if (err != nil) != tc.wantErr || ok != tc.wantOK {
				t.Errorf("got (%d, %v), want (%d, error %v)", ok, err, tc.wantOK, tc.wantErr)
			}
			if int(calls.Load()) != tc.wantCalls {
				t.Errorf("%d calls, want %d: a failing batch must be the last", calls.Load(), tc.wantCalls)
			}
		})
	}
}

func TestExpectationsGateCreates(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	e := NewExpectations(clk)
	const key = "ns/pool"
	if !e.TryExpectCreations(key, 3) {
		t.Fatal("first expectation refused")
	}
	if e.TryExpectCreations(key, 1) || e.Satisfied(key) {
		t.Fatal("a second batch was allowed before the first was observed")
	}
	e.CreationObserved(key)
	// One create was skipped: it must lower the expectation, or the pool
	// would wait for an event that never comes.
	e.LowerCreations(key, 1)
	if e.Satisfied(key) {
		t.Fatal("satisfied with one create still unobserved")
	}
	e.CreationObserved(key)
	if !e.Satisfied(key) {
		t.Fatal("not satisfied after every create was observed")
	}

	e.ExpectDeletions(key, "uid-1")
	if !e.IsPendingDeletion(key, "uid-1") || e.TryExpectCreations(key, 1) {
		t.Fatal("creates allowed while a delete is unobserved")
	}
	e.DeletionObserved(key, "uid-1")
	if !e.TryExpectCreations(key, 1) {
		t.Fatal("creates refused after the delete was observed")
	}

	// A lost event never wedges the owner.
	clk.SetTime(clk.Now().Add(ExpectationsTTL + time.Second))
	if !e.Satisfied(key) {
		t.Fatal("expectations never expire")
	}
}

// An expired record is not added to: the keys of deletes never observed
// and the count of creates never seen would otherwise pile up for as long
// as the owner lives, and wedge it again for another TTL.
func TestExpectationsExpiredRecordStartsAfresh(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	e := NewExpectations(clk)
	const key = "ns/pool"
	e.ExpectCreations(key, 2)
	e.ExpectDeletions(key, "uid-lost")
	clk.SetTime(clk.Now().Add(ExpectationsTTL + time.Second))
	e.ExpectDeletions(key, "uid-new")
	adds, dels := e.Pending(key)
	if adds != 0 || len(dels) != 1 || dels[0] != "uid-new" {
		t.Errorf("pending after expiry = %d creates, deletes %v; want 0 and [uid-new]", adds, dels)
	}
	e.DeletionObserved(key, "uid-new")
	if !e.Satisfied(key) {
		t.Error("not satisfied once the one live expectation was observed")
	}
}
