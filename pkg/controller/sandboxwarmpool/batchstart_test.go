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
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// A pool's first refill climbs 1, 2, 4, …; the next one starts at the size
// the last one reached without an error, so replacing what a stream of
// claims took is one round trip, not four. A failure starts it at one
// again. (The fake clientset serves one request at a time, so the batches
// show here in how many creates a failing pass sends; the integration
// test sees them in flight together on the real API server.)
func TestRefillStartsAtItsLastBatch(t *testing.T) {
	f := newFixture(t)
	tmpl := newTemplate("python")
	f.seed(newPool(6, ""), tmpl)
	creates := func() int {
		n := 0
		for _, a := range f.actions() {
			if a.Verb == "create" {
				n++
			}
		}
		return n
	}
	failing := func(fail func(n int) bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		first := f.creates + 1
		f.createErr = func(n int) error {
			if fail(n - first) {
				// Refused (not of unknown outcome, which a live list settles).
				return apierrors.NewForbidden(agentsv1beta1.SandboxesResource.GroupResource(), "", errors.New("exceeded quota"))
			}
			return nil
		}
	}
	// The informers never run: the creates are "seen" by hand, and the
	// members never reach the cache, so every pass finds the pool empty, as
	// one whose members were all claimed.
	seen := func(n int) {
		for range n {
			f.c.expectations.CreationObserved(poolKeyString)
		}
	}

	f.run()
	if n := creates(); n != 6 {
		t.Fatalf("first refill: %d creates, want 6", n)
	}
	if got := f.c.batches.initial(poolKeyString); got != 6 {
		t.Fatalf("after a refill of 6 the next starts at %d, want 6", got)
	}

	// The next pass's second create fails. Started at one it would stop
	// after its second batch (3 creates); started at 6 all 6 are sent in
	// its first batch.
	seen(6)
	failing(func(i int) bool { return i == 1 })
	if _, err := f.runErr(); err == nil {
		t.Fatal("sync succeeded although a create failed")
	}
	if n := creates(); n != 6 {
		t.Errorf("second refill sent %d creates, want all 6 in one batch", n)
	}
	if got := f.c.batches.initial(poolKeyString); got != 1 {
		t.Errorf("after a failed create the next refill starts at %d, want 1", got)
	}

	// Every create fails now: each pass sends one.
	seen(5)
	failing(func(int) bool { return true })
	for range 2 {
		if _, err := f.runErr(); err == nil {
			t.Fatal("sync succeeded although its creates failed")
		}
		if n := creates(); n != 1 {
			t.Errorf("a failing pool's refill sent %d creates, want 1 (slow start from one)", n)
		}
	}

	// Recovered: from one again, and the next from what that reached.
	failing(func(int) bool { return false })
	f.run()
	if n := creates(); n != 6 {
		t.Fatalf("recovered refill: %d creates, want 6", n)
	}
	if got := f.c.batches.initial(poolKeyString); got != 6 {
		t.Errorf("next refill starts at %d, want 6", got)
	}
}

func TestBatchStart(t *testing.T) {
	b := newBatchStart()
	if got := b.initial("a"); got != 1 {
		t.Errorf("unknown pool starts at %d, want 1", got)
	}
	b.record("a", 20, false)
	b.record("b", 7, false)
	if got := b.initial("a"); got != 20 {
		t.Errorf("after 20 created: %d, want 20", got)
	}
	b.record("a", 3, false) // the claim rate fell
	if got := b.initial("a"); got != 3 {
		t.Errorf("after 3 created: %d, want 3", got)
	}
	b.record("a", 2, true)
	if got := b.initial("a"); got != 1 {
		t.Errorf("after a failure: %d, want 1", got)
	}
	b.forget("b")
	if got := b.initial("b"); got != 1 {
		t.Errorf("forgotten pool starts at %d, want 1", got)
	}
}
