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
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func sandboxOf(name string, ctrl Owner) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("sb-" + name)}}
	if ctrl.Kind != "" {
		yes := true
		sb.OwnerReferences = []metav1.OwnerReference{{Kind: ctrl.Kind, Name: ctrl.Name, UID: types.UID(ctrl.UID), Controller: &yes}}
	}
	return sb
}

// recorder collects what a poolMembers reports.
type recorder struct{ seen [][]string }

func (r *recorder) observe(_ time.Time, pool string, names []string) {
	r.seen = append(r.seen, append([]string{pool}, names...))
}

func TestPoolMembersFollowsEvents(t *testing.T) {
	var r recorder
	p := newPoolMembers(poolKind, r.observe)
	deleting := sandboxOf("p3", pool)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	steps := []func() error{
		func() error { return p.Add(sandboxOf("p1", pool)) },
		func() error { return p.Add(sandboxOf("p2", pool)) },
		func() error { return p.Add(sandboxOf("c1", claimA)) }, // no pool: nothing to report
		func() error { return p.Update(sandboxOf("p1", claimA)) },
		func() error { return p.Add(sandboxOf("p3", pool)) },
		func() error { return p.Update(deleting) },
		func() error { return p.Delete(sandboxOf("p2", pool)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := [][]string{
		{"bench", "p1"},
		{"bench", "p1", "p2"},
		{"bench", "p2"},
		{"bench", "p2", "p3"},
		{"bench", "p2"},
		{"bench"},
	}
	if diff := cmp.Diff(want, r.seen); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}

// TestPoolMembersRelistIsOneState is the chaos run's false pool-overfilled
// report after an API server restart: while the watch was down a claim
// took m1 and the pool refilled with m4. Informer handlers see the relist
// object by object (m4 added while m1 still counts: 4 of 3); the store
// sees it as one state of 3.
func TestPoolMembersRelistIsOneState(t *testing.T) {
	start := time.Now()
	c := NewChecker(start, claimKind, poolKind)
	c.SetPoolReplicas("bench", 3)
	p := newPoolMembers(poolKind, c.ObservePoolMembers)
	if err := p.Replace([]any{sandboxOf("m1", pool), sandboxOf("m2", pool), sandboxOf("m3", pool)}, "10"); err != nil {
		t.Fatal(err)
	}
	if err := p.Replace([]any{sandboxOf("m4", pool), sandboxOf("m1", claimA), sandboxOf("m2", pool), sandboxOf("m3", pool)}, "20"); err != nil {
		t.Fatal(err)
	}
	if vs := c.Violations(); len(vs) != 0 {
		t.Errorf("a relist within the replicas reported: %v", vs)
	}
	if got := c.MaxPoolMembers("bench"); got != 3 {
		t.Errorf("MaxPoolMembers = %d, want 3", got)
	}
	// A pool emptied by the relist is reported empty, not left at its
	// last count.
	var r recorder
	q := newPoolMembers(poolKind, r.observe)
	_ = q.Replace([]any{sandboxOf("m1", pool)}, "1")
	_ = q.Replace(nil, "2")
	if diff := cmp.Diff([][]string{{"bench", "m1"}, {"bench"}}, r.seen); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}

func TestWatchPoolMembersReportsOverfill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agents := fake.NewSimpleClientset()
	if err := agents.Tracker().Create(agentsv1beta1.SandboxesResource, sandboxOf("m1", pool), "ns"); err != nil {
		t.Fatal(err)
	}
	// The fake's own watch misses objects created before it starts; a
	// watcher of our own delivers the event once the reflector watches.
	events := watch.NewFake()
	agents.PrependWatchReactor("sandboxes", func(clienttesting.Action) (bool, watch.Interface, error) {
		return true, events, nil
	})
	c := NewChecker(time.Now(), claimKind, poolKind)
	c.SetPoolReplicas("bench", 1)
	stop, err := watchPoolMembers(ctx, agents, "ns", c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if got := c.MaxPoolMembers("bench"); got != 1 {
		t.Fatalf("after the first list MaxPoolMembers = %d, want 1", got)
	}
	events.Add(sandboxOf("m2", pool))
	if err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return len(c.Violations()) > 0, nil
	}); err != nil {
		t.Fatalf("no violation for a pool of 1 holding 2: %v", err)
	}
	if diff := cmp.Diff([]string{RulePoolOverfilled}, rules(c.Violations())); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}
