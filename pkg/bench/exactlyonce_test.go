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

package bench

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	claimKind = "SandboxClaim"
	poolKind  = "SandboxWarmPool"
)

var (
	pool   = Owner{Kind: poolKind, Name: "bench", UID: "pool-uid"}
	claimA = Owner{Kind: claimKind, Name: "a", UID: "uid-a"}
	claimB = Owner{Kind: claimKind, Name: "b", UID: "uid-b"}
)

func sb(name string, ctrl Owner) SandboxObs {
	return SandboxObs{Name: name, UID: "sb-" + name, Controller: ctrl, Ready: true, LaunchType: "warm"}
}

func cl(owner Owner, sandbox string) ClaimObs {
	return ClaimObs{Name: owner.Name, UID: owner.UID, Sandbox: sandbox, Ready: sandbox != ""}
}

// event is one synthetic watch event for the checker.
type event struct {
	sandbox *SandboxObs
	claim   *ClaimObs
}

func sbEv(o SandboxObs) event { return event{sandbox: &o} }
func clEv(o ClaimObs) event   { return event{claim: &o} }

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	slices.Sort(out)
	return out
}

func TestCheckerWatchRules(t *testing.T) {
	tests := map[string]struct {
		events []event
		want   []string
	}{
		"warm adoption: pool to one claim": {
			events: []event{
				sbEv(sb("s1", pool)), clEv(cl(claimA, "")),
				sbEv(sb("s1", claimA)), clEv(cl(claimA, "s1")),
			},
		},
		"claim status before the owner swap is seen": {
			// Two watches, no ordering between them: not a violation.
			events: []event{sbEv(sb("s1", pool)), clEv(cl(claimA, "s1")), sbEv(sb("s1", claimA))},
		},
		"sandbox moves from claim A to claim B": {
			events: []event{
				sbEv(sb("s1", pool)), sbEv(sb("s1", claimA)), clEv(cl(claimA, "s1")),
				sbEv(sb("s1", claimB)),
			},
			want: []string{RuleSandboxMovedBetweenClaims},
		},
		"sandbox moves from claim A back to the pool and on to claim B": {
			events: []event{
				sbEv(sb("s1", claimA)), sbEv(sb("s1", pool)), sbEv(sb("s1", claimB)),
			},
			want: []string{RuleSandboxMovedBetweenClaims},
		},
		"two claims name the same sandbox": {
			events: []event{sbEv(sb("s1", claimA)), clEv(cl(claimA, "s1")), clEv(cl(claimB, "s1"))},
			want:   []string{RuleClaimNamesForeignSandbox, RuleSandboxNamedByTwoClaims},
		},
		"claim switches its sandbox": {
			events: []event{clEv(cl(claimA, "s1")), clEv(cl(claimA, "s2"))},
			want:   []string{RuleClaimSwitchedSandbox},
		},
		"a re-created sandbox of the same name is a new object": {
			events: []event{
				sbEv(sb("s1", claimA)),
				sbEv(SandboxObs{Name: "s1", UID: "sb-s1", Controller: claimA, Deleted: true}),
				sbEv(SandboxObs{Name: "s1", UID: "sb-s1-new", Controller: claimB}),
			},
		},
		"a repeated state is reported once": {
			events: []event{sbEv(sb("s1", claimA)), sbEv(sb("s1", claimB)), sbEv(sb("s1", claimA)), sbEv(sb("s1", claimB))},
			want:   []string{RuleSandboxMovedBetweenClaims},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			c := NewChecker(start, claimKind, poolKind)
			for i, ev := range tc.events {
				at := start.Add(time.Duration(i) * time.Millisecond)
				if ev.sandbox != nil {
					c.ObserveSandbox(at, *ev.sandbox)
				}
				if ev.claim != nil {
					c.ObserveClaim(at, *ev.claim)
				}
			}
			if diff := cmp.Diff(tc.want, rules(c.Violations())); diff != "" {
				t.Errorf("(-want,+got):\n%s\n%v", diff, c.Violations())
			}
		})
	}
}

func TestCheckerFinal(t *testing.T) {
	tests := map[string]struct {
		sandboxes []SandboxObs
		claims    []ClaimObs
		want      []string
	}{
		"settled and correct": {
			sandboxes: []SandboxObs{sb("p1", pool), sb("s1", claimA), sb("s2", claimB)},
			claims:    []ClaimObs{cl(claimA, "s1"), cl(claimB, "s2")},
		},
		"leaked: owned by a claim that is gone": {
			sandboxes: []SandboxObs{sb("p1", pool), sb("s1", claimA)},
			want:      []string{RuleLeakedSandbox},
		},
		"leaked: orphan": {
			sandboxes: []SandboxObs{sb("s1", Owner{})},
			want:      []string{RuleLeakedSandbox},
		},
		"a sandbox being deleted is not a leak": {
			sandboxes: []SandboxObs{{Name: "s1", UID: "sb-s1", Controller: claimA, Deleted: true}},
		},
		"claim names a sandbox it does not control": {
			sandboxes: []SandboxObs{sb("p1", pool)},
			claims:    []ClaimObs{cl(claimA, "p1")},
			want:      []string{RuleClaimNamesForeignSandbox},
		},
		"claim names a sandbox that does not exist": {
			claims: []ClaimObs{cl(claimA, "gone")},
			want:   []string{RuleClaimNamesForeignSandbox},
		},
		"claim controls two sandboxes": {
			sandboxes: []SandboxObs{sb("s1", claimA), sb("s2", claimA)},
			claims:    []ClaimObs{cl(claimA, "s1")},
			want:      []string{RuleClaimControlsTwoSandboxes},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewChecker(time.Now(), claimKind, poolKind)
			c.Final(time.Now(), []string{"bench"}, tc.sandboxes, tc.claims)
			if diff := cmp.Diff(tc.want, rules(c.Violations())); diff != "" {
				t.Errorf("(-want,+got):\n%s\n%v", diff, c.Violations())
			}
		})
	}
}

func TestCheckerPoolBound(t *testing.T) {
	start := time.Now()
	c := NewChecker(start, claimKind, poolKind)
	for _, name := range []string{"p1", "p2", "p3"} {
		c.ObserveSandbox(start, sb(name, pool))
	}
	// One member taken by a claim, one deleted: the pool is at 1 now, but
	// it held 3 at once.
	c.ObserveSandbox(start, sb("p1", claimA))
	c.ObserveSandbox(start, SandboxObs{Name: "p2", UID: "sb-p2", Controller: pool, Deleted: true})
	c.ObservePoolMembers(start, "bench", []string{"p1", "p2", "p3"})
	c.ObservePoolMembers(start, "bench", []string{"p3"})
	if members, ready := c.PoolStats("bench"); members != 1 || ready != 1 {
		t.Errorf("PoolStats = %d, %d; want 1, 1", members, ready)
	}
	if got := c.MaxPoolMembers("bench"); got != 3 {
		t.Errorf("MaxPoolMembers = %d, want 3", got)
	}
	c.CheckPoolBound("bench", 3)
	if vs := c.Violations(); len(vs) != 0 {
		t.Errorf("unexpected %v", vs)
	}
	c.CheckPoolBound("bench", 2)
	if diff := cmp.Diff([]string{RulePoolOverfilled}, rules(c.Violations())); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if got := c.CreatedBy(poolKind, start); got != 3 {
		t.Errorf("CreatedBy(pool) = %d, want 3", got)
	}
	if got := c.Controlled(claimKind); got != 1 {
		t.Errorf("Controlled(claim) = %d, want 1", got)
	}
}

func TestCheckerPoolReplicasPerState(t *testing.T) {
	start := time.Now()
	c := NewChecker(start, claimKind, poolKind)
	c.SetPoolReplicas("bench", 2)
	c.ObservePoolMembers(start, "bench", []string{"p1"})
	c.ObservePoolMembers(start, "bench", []string{"p1", "p2"})
	if vs := c.Violations(); len(vs) != 0 {
		t.Fatalf("a pool at its replicas: %v", vs)
	}
	// A third member before any is taken: reported once, with names.
	c.ObservePoolMembers(start.Add(time.Second), "bench", []string{"p1", "p2", "p3"})
	c.ObservePoolMembers(start.Add(2*time.Second), "bench", []string{"p1", "p2", "p3"})
	want := []Violation{{At: time.Second, Rule: RulePoolOverfilled,
		Detail: "pool bench controlled 3 sandboxes at once, more than its 2 replicas: [p1 p2 p3]"}}
	if diff := cmp.Diff(want, c.Violations()); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	// Sandbox events alone no longer count members: their order over a
	// relist is not one the API server ever held.
	other := NewChecker(start, claimKind, poolKind)
	other.SetPoolReplicas("bench", 1)
	other.ObserveSandbox(start, sb("p1", pool))
	other.ObserveSandbox(start, sb("p2", pool))
	if vs := other.Violations(); len(vs) != 0 {
		t.Errorf("counted from Sandbox events: %v", vs)
	}
}

func TestCheckerForgetGone(t *testing.T) {
	start := time.Now()
	c := NewChecker(start, claimKind, poolKind)
	c.ForgetGone()
	c.ObserveSandbox(start, sb("s1", claimA))
	c.ObserveClaim(start, cl(claimA, "s1"))
	c.ObserveSandbox(start, SandboxObs{Name: "s1", UID: "sb-s1", Controller: claimA, Deleted: true, Gone: true})
	c.ObserveClaim(start, ClaimObs{Name: "a", UID: "uid-a", Deleted: true, Gone: true})
	if info := c.Sandbox("s1"); info.Found {
		t.Errorf("sandbox s1 still known after its delete event: %+v", info)
	}
	c.mu.Lock()
	n := len(c.claims)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d claims still known after their delete events", n)
	}
	// A deletion timestamp alone keeps the state: the object still exists.
	c.ObserveSandbox(start, SandboxObs{Name: "s2", UID: "sb-s2", Controller: claimB, Deleted: true})
	if !c.Sandbox("s2").Found {
		t.Error("sandbox s2 forgotten at its deletion timestamp")
	}
}

func TestCheckerFinalSeveralPools(t *testing.T) {
	other := Owner{Kind: poolKind, Name: "other", UID: "other-uid"}
	third := Owner{Kind: poolKind, Name: "third", UID: "third-uid"}
	c := NewChecker(time.Now(), claimKind, poolKind)
	c.Final(time.Now(), []string{"bench", "other"}, []SandboxObs{sb("p1", pool), sb("o1", other), sb("t1", third)}, nil)
	if diff := cmp.Diff([]string{RuleLeakedSandbox}, rules(c.Violations())); diff != "" {
		t.Errorf("(-want,+got):\n%s\n%v", diff, c.Violations())
	}
}
