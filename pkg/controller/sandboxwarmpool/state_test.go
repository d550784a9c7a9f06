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

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// poolState counts what the controller keeps for pool "pool".
func (f *fixture) poolState() (n int) {
	adds, dels := f.c.expectations.Pending(poolKeyString)
	n = adds + len(dels)
	f.c.refill.mu.Lock()
	if _, ok := f.c.refill.pools[poolKeyString]; ok {
		n++
	}
	f.c.refill.mu.Unlock()
	f.c.statusPacer.mu.Lock()
	if _, ok := f.c.statusPacer.last[poolKeyString]; ok {
		n++
	}
	f.c.statusPacer.mu.Unlock()
	f.c.passes.mu.Lock()
	if _, ok := f.c.passes.last[poolKeyString]; ok {
		n++
	}
	f.c.passes.mu.Unlock()
	f.c.mu.Lock()
	if f.c.notProgressing[poolKeyString] {
		n++
	}
	f.c.mu.Unlock()
	return n
}

// fillPoolState gives pool "pool" an entry in every per-pool map.
func (f *fixture) fillPoolState() {
	f.t.Helper()
	f.c.expectations.ExpectCreations(poolKeyString, 2)
	f.c.expectations.ExpectDeletions(poolKeyString, "uid-x")
	f.c.refill.hold(poolKeyString, 1, 3, now)
	f.c.statusPacer.wrote(poolKeyString, now)
	f.c.passes.mark(poolKeyString, now)
	f.c.setProgressing(poolKeyString, newPool(3, ""), 1, 3)
	if n := f.poolState(); n != 7 {
		f.t.Fatalf("seeded %d entries of pool state, want 7", n)
	}
}

// State keyed by a pool goes on its delete event (tombstone or not) and
// again on the sync that finds it gone, since delete events can be missed.
func TestPoolStateForgotten(t *testing.T) {
	withDelay := func(o *Options) { o.ReplenishDelay = time.Minute }
	pool := newPool(3, "")
	t.Run("delete event", func(t *testing.T) {
		f := newFixture(t, withDelay)
		f.fillPoolState()
		f.expectEvents("Warning WarmPoolNotProgressing 1/3 sandboxes are unschedulable past the 5m0s readiness grace period; holding them instead of replacing (replacements would be equally unschedulable)")
		f.c.onPoolDeleted(pool)
		if n := f.poolState(); n != 0 {
			t.Errorf("%d entries of pool state left after its delete event", n)
		}
		if f.c.queue.Len() != 1 {
			t.Errorf("queue holds %d keys, want the deleted pool's", f.c.queue.Len())
		}
	})
	t.Run("delete event with a tombstone", func(t *testing.T) {
		f := newFixture(t, withDelay)
		f.fillPoolState()
		f.c.onPoolDeleted(cache.DeletedFinalStateUnknown{Key: poolKeyString, Obj: pool})
		if n := f.poolState(); n != 0 {
			t.Errorf("%d entries of pool state left after its delete event", n)
		}
	})
	t.Run("NotFound sync", func(t *testing.T) {
		f := newFixture(t, withDelay)
		f.fillPoolState()
		f.run()
		if n := f.poolState(); n != 0 {
			t.Errorf("%d entries of pool state left after the sync found it gone", n)
		}
		f.expectActions()
	})
}

// State keyed by a member's UID normally goes with the member's delete
// event; the sweep expires what that missed: members whose event never
// came, and a create whose Sandbox the informer never showed.
func TestSweepExpiresStateOfMembersGoneUnseen(t *testing.T) {
	f := newFixture(t)
	pool := newPool(3, "")
	tmpl := newTemplate("python")
	kept := member(pool, tmpl, "kept", time.Hour, true)
	gone := member(pool, tmpl, "gone", time.Hour, true)
	// Refused whatever it runs: it names another Pod.
	refused := member(pool, tmpl, "refused", time.Hour, true)
	refused.Annotations[agentsv1beta1.PodNameAnnotation] = "someone-elses-pod"
	f.seed(pool, tmpl, kept, gone, refused)
	f.c.opts.Provenance.Created(pool.UID, kept)
	f.c.opts.Provenance.Created(pool.UID, gone)

	// One create (3 wanted, 2 counted); the informer never shows it.
	f.run()
	f.expectEvents("Warning RefusedMember Sandbox refused names this pool as its controller but is not counted as a member or handed to claims: it names a Pod other than its own (agents.x-k8s.io/pod-name)",
		"Normal SuccessfulCreate Created 1 Sandboxes")
	state := func() (provenance, matches, refusals int) {
		f.c.mu.Lock()
		defer f.c.mu.Unlock()
		return f.c.opts.Provenance.Len(), f.c.matches.Len(), len(f.c.refused)
	}
	if p, m, r := state(); p != 3 || m != 3 || r != 1 {
		t.Fatalf("before: provenance %d, verdicts %d, refusals %d; want 3, 3, 1", p, m, r)
	}

	// Their delete events are missed.
	f.unseed(gone)
	f.unseed(refused)
	_, ctx := ktesting.NewTestContext(t)
	f.c.sweepMembers(ctx)
	if p, m, r := state(); p != 3 || m != 3 || r != 1 {
		t.Errorf("after one sweep: provenance %d, verdicts %d, refusals %d; want all kept (an absence may be a create not shown yet)", p, m, r)
	}
	f.c.sweepMembers(ctx)
	if p, m, r := state(); p != 1 || m != 1 || r != 0 {
		t.Errorf("after two sweeps: provenance %d, verdicts %d, refusals %d; want only the live member's", p, m, r)
	}
	if !f.c.opts.Provenance.CreatedBy(pool.UID, kept) {
		t.Error("the live member lost its provenance")
	}
}

// Until the caches have synced, an absent Sandbox proves nothing.
func TestSweepWaitsForSync(t *testing.T) {
	f := newFixture(t)
	pool := newPool(1, "")
	f.c.opts.Provenance.Created(pool.UID, member(pool, newTemplate("python"), "unlisted", time.Hour, true))
	f.c.synced = []cache.InformerSynced{func() bool { return false }}
	_, ctx := ktesting.NewTestContext(t)
	f.c.sweepMembers(ctx)
	f.c.sweepMembers(ctx)
	if n := f.c.opts.Provenance.Len(); n != 1 {
		t.Errorf("provenance holds %d records after sweeps before sync, want 1", n)
	}
}
