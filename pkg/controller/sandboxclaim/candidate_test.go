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

package sandboxclaim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// The member a claim takes: Ready before not Ready, then from the node
// with most candidates, then the oldest, then by name; starting members
// (no Pod IP) are only counted, and members tried earlier are left out.
func TestCandidateOrder(t *testing.T) {
	on := func(node string, sb *agentsv1beta1.Sandbox) *agentsv1beta1.Sandbox {
		sb.Status.NodeName = node
		return sb
	}
	for name, tc := range map[string]struct {
		members []*agentsv1beta1.Sandbox
		tried   []string
		want    string
		// starting is the count of takeable members without a Pod IP.
		starting int
	}{
		"Ready before an older not Ready": {
			members: []*agentsv1beta1.Sandbox{newMember("up", memberUp, time.Hour), newMember("ready", memberReady, time.Minute)},
			want:    "ready",
		},
		"the node with most candidates, before an older member elsewhere": {
			members: []*agentsv1beta1.Sandbox{
				on("node-a", newMember("a-old", memberReady, time.Hour)),
				on("node-b", newMember("b-1", memberReady, time.Minute)),
				on("node-b", newMember("b-2", memberReady, 2*time.Minute)),
			},
			want: "b-2",
		},
		"the oldest on a tie of nodes": {
			members: []*agentsv1beta1.Sandbox{newMember("young", memberReady, time.Minute), newMember("old", memberReady, time.Hour)},
			want:    "old",
		},
		"by name on a tie of age": {
			members: []*agentsv1beta1.Sandbox{newMember("m-b", memberReady, time.Minute), newMember("m-a", memberReady, time.Minute)},
			want:    "m-a",
		},
		"starting members are counted, not taken": {
			members:  []*agentsv1beta1.Sandbox{newMember("s1", memberStarting, time.Hour), newMember("s2", memberStarting, time.Hour)},
			starting: 2,
		},
		"a member tried earlier is left out": {
			members: []*agentsv1beta1.Sandbox{newMember("old", memberReady, time.Hour), newMember("young", memberReady, time.Minute)},
			tried:   []string{"old"},
			want:    "young",
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newTemplate(), newPool())
			for _, m := range tc.members {
				f.add(m)
			}
			tried := map[types.UID]bool{}
			for _, n := range tc.tried {
				tried[types.UID(n+"-uid")] = true
			}
			got, starting, err := f.c.candidate(newPool(), newTemplate(), tried)
			if err != nil {
				t.Fatal(err)
			}
			if gotName := nameOf(got); gotName != tc.want || starting != tc.starting {
				t.Errorf("candidate %q with %d starting, want %q with %d", gotName, starting, tc.want, tc.starting)
			}
		})
	}
}

// The linear pass picks what a full sort by candidateOrder would put
// first, on random pools (readiness, nodes, ages and names drawn from
// small sets, so that every tie-break is exercised).
func TestCandidateIsTheFirstOfTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 7))
	for round := range 200 {
		f := newFixture(t, newTemplate(), newPool())
		var eligible []*agentsv1beta1.Sandbox
		perNode := map[string]int{}
		for i := range 1 + rng.IntN(12) {
			state := memberState(rng.IntN(3))
			sb := newMember(fmt.Sprintf("m-%d-%d", rng.IntN(4), i), state, time.Duration(rng.IntN(3))*time.Minute)
			if state != memberStarting {
				sb.Status.NodeName = fmt.Sprintf("node-%d", rng.IntN(3))
				eligible = append(eligible, sb)
				perNode[sb.Status.NodeName]++
			}
			f.add(sb)
		}
		ready := func(sb *agentsv1beta1.Sandbox) bool {
			return meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		}
		slices.SortFunc(eligible, func(a, b *agentsv1beta1.Sandbox) int {
			return candidateOrder(a, b, ready(a), ready(b), perNode)
		})
		want := ""
		if len(eligible) > 0 {
			want = eligible[0].Name
		}
		got, _, err := f.c.candidate(newPool(), newTemplate(), map[types.UID]bool{})
		if err != nil {
			t.Fatal(err)
		}
		if nameOf(got) != want {
			t.Fatalf("round %d: candidate %q, a sort puts %q first", round, nameOf(got), want)
		}
	}
}

func nameOf(sb *agentsv1beta1.Sandbox) string {
	if sb == nil {
		return ""
	}
	return sb.Name
}

// BenchmarkCandidate: a claim's choice among a pool of 1000 Ready members
// on 10 nodes (members' verdicts cached, as after the first claim).
func BenchmarkCandidate(b *testing.B) {
	f := newFixture(b, newTemplate(), newPool())
	for i := range 1000 {
		sb := newMember(fmt.Sprintf("m-%04d", i), memberReady, time.Duration(i)*time.Second)
		sb.Status.NodeName = fmt.Sprintf("node-%d", i%10)
		f.add(sb)
	}
	pool, tmpl, tried := newPool(), newTemplate(), map[types.UID]bool{}
	b.ReportAllocs()
	for b.Loop() {
		if sb, _, err := f.c.candidate(pool, tmpl, tried); err != nil || sb == nil {
			b.Fatal(sb, err)
		}
	}
}
