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

// A member create observed after the pass counted the members but before
// it decided must not be made again: the pass goes by whether its earlier
// writes were all visible when it started counting.
func TestNoCreateWhenExpectationsSettleMidPass(t *testing.T) {
	f := newFixture(t)
	pool := newPool(3, "")
	tmpl := newTemplate("python")
	f.seed(pool, tmpl, member(pool, tmpl, "pool-a", time.Hour, true), member(pool, tmpl, "pool-b", time.Hour, true))
	// The third member was created by an earlier pass; its watch event has
	// not arrived yet.
	if !f.c.expectations.TryExpectCreations(poolKeyString, 1) {
		t.Fatal("could not raise the expectation")
	}
	// It arrives while this pass is between counting and deciding.
	f.c.afterClassify = func() {
		f.seed(member(pool, tmpl, "pool-c", time.Hour, true))
		f.c.expectations.CreationObserved(poolKeyString)
	}
	f.run()
	for _, a := range f.actions() {
		if a.Verb == "create" {
			t.Fatalf("the pass created a member although all 3 exist: %v", a)
		}
	}
	// The next pass sees all three and creates nothing either.
	f.c.afterClassify = nil
	f.run()
	for _, a := range f.actions() {
		if a.Verb == "create" {
			t.Fatalf("a later pass created a member: %v", a)
		}
	}
}
