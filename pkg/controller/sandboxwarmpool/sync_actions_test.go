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
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const poolKeyString = ns + "/pool"

// createMember is the create of one member of pool "pool" from tmpl, the
// body spelled out from docs/controllers/sandboxwarmpool.md ("Members").
func createMember(t *testing.T, tmpl *extv1beta1.SandboxTemplate) action {
	t.Helper()
	hashes, err := sandboxpolicy.HashTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	spec := *tmpl.Spec.SandboxBlueprint.DeepCopy()
	// The secure defaults: no token, public DNS under the default policy.
	spec.PodTemplate.Spec.AutomountServiceAccountToken = ptr.To(false)
	spec.PodTemplate.Spec.DNSPolicy = corev1.DNSNone
	spec.PodTemplate.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: sandboxpolicy.DefaultNameservers}
	return action{Verb: "create", Resource: "sandboxes", Namespace: ns, Object: &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "pool-",
			Namespace:    ns,
			Labels: map[string]string{
				"agents.x-k8s.io/launch-type":               "warm",
				"agents.x-k8s.io/created-by":                "controller",
				"agents.x-k8s.io/warm-pool-sandbox":         agentsv1beta1.NameHash("pool"),
				"agents.x-k8s.io/sandbox-template-ref-hash": agentsv1beta1.NameHash("tmpl"),
				agentsv1beta1.SandboxTemplateHashLabel:      hashes.Blueprint,
				agentsv1beta1.SandboxPodTemplateHashLabel:   hashes.PodTemplate,
			},
			Annotations: map[string]string{
				"agents.x-k8s.io/sandbox-template-ref": "tmpl",
				"agents.x-k8s.io/warm-pool-member":     "pool-uid",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "extensions.agents.x-k8s.io/v1beta1", Kind: "SandboxWarmPool", Name: "pool", UID: "pool-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: spec},
	}}
}

func repeat(a action, n int) []action {
	out := make([]action, n)
	for i := range out {
		out[i] = a
	}
	return out
}

func TestSyncScaleUpFromZero(t *testing.T) {
	f := newFixture(t)
	tmpl := newTemplate("python")
	f.seed(newPool(5, ""), tmpl)

	f.run()

	// Creates first (all from one prototype, so their parallel order does
	// not matter), then the status counted before them.
	f.expectActions(append(repeat(createMember(t, tmpl), 5), patchPoolStatus(statusPatch(0, 0)))...)
	f.expectEvents("Normal SuccessfulCreate Created 5 Sandboxes")
	if adds, dels := f.c.expectations.Pending(poolKeyString); adds != 5 || len(dels) != 0 {
		t.Errorf("pending = %d creates, %v deletes; want 5 creates until the informer shows them", adds, dels)
	}
	if n := f.c.opts.Provenance.Len(); n != 5 {
		t.Errorf("provenance records %d members, want the 5 created", n)
	}
}

// Creates go in slow-start batches of 1, 2, 4, ...: the batch with a
// failure is the last, and the creates that failed or never ran no longer
// count as expected.
func TestSyncScaleUpSlowStartStopsAtFailedBatch(t *testing.T) {
	f := newFixture(t)
	tmpl := newTemplate("python")
	f.seed(newPool(10, ""), tmpl)
	f.createErr = func(n int) error {
		if n == 4 { // in the third batch (creates 4 to 7)
			return errors.New("quota exceeded")
		}
		return nil
	}

	if _, err := f.runErr(); err == nil {
		t.Fatal("sync succeeded although a create failed")
	}

	// 1 + 2 + 4 creates, no fourth batch; no status from a failed pass.
	f.expectActions(repeat(createMember(t, tmpl), 7)...)
	f.expectEvents("Normal SuccessfulCreate Created 6 Sandboxes", "Warning FailedCreate Failed to create Sandboxes: quota exceeded")
	if adds, _ := f.c.expectations.Pending(poolKeyString); adds != 6 {
		t.Errorf("pending creates = %d, want the 6 that succeeded", adds)
	}
}

func TestSyncScaleUpCappedByMaxBatchSize(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBatchSize = 3 })
	tmpl := newTemplate("python")
	f.seed(newPool(10, ""), tmpl)

	f.run()

	f.expectActions(append(repeat(createMember(t, tmpl), 3), patchPoolStatus(statusPatch(0, 0)))...)
}

// Scale down deletes not-Ready members first, then the newest, with the
// member's UID and resourceVersion as preconditions (a member a claim has
// just taken must not be deleted).
func TestSyncScaleDown(t *testing.T) {
	pool := newPool(2, "")
	tmpl := newTemplate("python")
	for name, tc := range map[string]struct {
		members []*agentsv1beta1.Sandbox
		deleted []string // in order
		ready   int
	}{
		"not Ready first, newest first among them": {
			members: []*agentsv1beta1.Sandbox{
				member(pool, tmpl, "ready-old", 30*time.Minute, true),
				member(pool, tmpl, "ready-new", time.Minute, true),
				member(pool, tmpl, "starting-old", 2*time.Minute, false),
				member(pool, tmpl, "starting-new", time.Minute, false),
			},
			deleted: []string{"starting-new", "starting-old"},
			ready:   2,
		},
		"all Ready: newest first": {
			members: []*agentsv1beta1.Sandbox{
				member(pool, tmpl, "a", 30*time.Minute, true),
				member(pool, tmpl, "c", 10*time.Minute, true),
				member(pool, tmpl, "b", 20*time.Minute, true),
				member(pool, tmpl, "d", 5*time.Minute, true),
			},
			deleted: []string{"d", "c"},
			ready:   4,
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(pool.DeepCopy(), tmpl.DeepCopy())
			byName := map[string]*agentsv1beta1.Sandbox{}
			for _, sb := range tc.members {
				f.seed(sb.DeepCopy())
				byName[sb.Name] = sb
			}

			f.run()

			var want []action
			var wantEvents, wantPending []string
			for _, name := range tc.deleted {
				want = append(want, deleteMember(byName[name]))
				wantEvents = append(wantEvents, "Normal SuccessfulDelete Deleted Sandbox "+name+" (scaling down)")
				wantPending = append(wantPending, "uid-"+name)
			}
			// Status counts what the pass found, before its deletes.
			want = append(want, patchPoolStatus(statusPatch(len(tc.members), tc.ready)))
			f.expectActions(want...)
			f.expectEvents(wantEvents...)
			_, pending := f.c.expectations.Pending(poolKeyString)
			if diff := cmp.Diff(sortedStrings(wantPending), pending); diff != "" {
				t.Errorf("pending deletes (-want,+got):\n%s", diff)
			}
		})
	}
}

// Sandboxes with the pool's label that the pool does not control by UID
// are neither counted nor touched: a claimed one, one controlled by an
// earlier pool of the same name, one in another namespace.
func TestSyncIgnoresOthersMembers(t *testing.T) {
	f := newFixture(t)
	pool := newPool(2, "")
	tmpl := newTemplate("python")
	f.seed(pool, tmpl)

	earlier := member(pool, tmpl, "earlier-pool", time.Hour, true)
	earlier.OwnerReferences[0].UID = "earlier-pool-uid"
	claimed := member(pool, tmpl, "claimed", time.Hour, true)
	claimed.OwnerReferences = []metav1.OwnerReference{{APIVersion: "extensions.agents.x-k8s.io/v1beta1", Kind: "SandboxClaim",
		Name: "claim", UID: "claim-uid", Controller: ptr.To(true)}}
	elsewhere := member(pool, tmpl, "elsewhere", time.Hour, true)
	elsewhere.Namespace = "other-team"
	f.seed(earlier, claimed, elsewhere)

	f.run()

	f.expectActions(append(repeat(createMember(t, tmpl), 2), patchPoolStatus(statusPatch(0, 0)))...)
	f.expectEvents("Normal SuccessfulCreate Created 2 Sandboxes")
}

// A template change rolls members according to the update strategy and
// the member's verdict (docs/controllers/sandboxwarmpool.md, "Who is a
// member").
func TestSyncTemplateChange(t *testing.T) {
	pool := newPool(1, "")
	oldTmpl, curTmpl := newTemplate("python:3.12"), newTemplate("python:3.13")
	curTmpl.ResourceVersion = "2"
	for name, tc := range map[string]struct {
		strategy extv1beta1.SandboxWarmPoolUpdateStrategyType
		from     *extv1beta1.SandboxTemplate
		// own: this process created the member (provenance recorded).
		own     bool
		deleted bool
	}{
		"OnReplenish keeps its own stale member":                 {from: oldTmpl, own: true},
		"OnReplenish replaces an unverified stale member":        {from: oldTmpl, deleted: true},
		"Recreate replaces its own stale member":                 {strategy: extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType, from: oldTmpl, own: true, deleted: true},
		"Recreate keeps a member that runs the current template": {strategy: extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType, from: curTmpl},
		"OnReplenish keeps a current member it did not create":   {from: curTmpl},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			p := newPool(1, tc.strategy)
			sb := member(pool, tc.from, "m", time.Hour, true)
			f.seed(p, curTmpl.DeepCopy(), sb)
			if tc.own {
				f.c.opts.Provenance.Created(p.UID, sb)
			}

			f.run()

			if tc.deleted {
				// Deleted, counted as terminating: no replacement until it is gone.
				f.expectActions(deleteMember(sb), patchPoolStatus(statusPatch(0, 0)))
				f.expectEvents("Normal SuccessfulDelete Deleted Sandbox m (stale: the template changed)")
				return
			}
			f.expectActions(patchPoolStatus(statusPatch(1, 1)))
			f.expectEvents()
		})
	}
}

// A Sandbox controlled by the pool's UID that neither runs the template
// nor carries the pool's provenance (a member made before the
// warm-pool-member annotation existed, after a template change; or a
// forgery) is stale: the pool deletes it, as it would an unverified one.
// One that names another Pod is refused: not counted, not touched,
// reported once.
func TestSyncRefusedMember(t *testing.T) {
	pool := newPool(1, "")
	tmpl := newTemplate("python:3.13")
	t.Run("stale: deleted", func(t *testing.T) {
		f := newFixture(t)
		old := member(pool, newTemplate("python:3.12"), "old", time.Hour, true)
		delete(old.Annotations, agentsv1beta1.WarmPoolMemberAnnotation)
		f.seed(pool.DeepCopy(), tmpl.DeepCopy(), old)

		f.run()

		// Terminating, so no replacement until it is gone.
		f.expectActions(deleteMember(old), patchPoolStatus(statusPatch(0, 0)))
		f.expectEvents("Normal SuccessfulDelete Deleted Sandbox old (stale: its spec differs from the template and it is not shown to be this pool's member)")
		if _, dels := f.c.expectations.Pending(poolKeyString); len(dels) != 1 || dels[0] != "uid-old" {
			t.Errorf("pending deletes %v, want [uid-old]", dels)
		}
	})
	t.Run("names another Pod: refused", func(t *testing.T) {
		f := newFixture(t)
		foreign := member(pool, tmpl, "foreign", time.Hour, true)
		foreign.Annotations[agentsv1beta1.PodNameAnnotation] = "someone-elses-pod"
		f.seed(pool.DeepCopy(), tmpl.DeepCopy(), foreign)

		f.run()

		f.expectActions(createMember(t, tmpl), patchPoolStatus(statusPatch(0, 0)))
		f.expectEvents("Warning RefusedMember Sandbox foreign names this pool as its controller but is not counted as a member or handed to claims: it names a Pod other than its own (agents.x-k8s.io/pod-name)",
			"Normal SuccessfulCreate Created 1 Sandboxes")
		// Reported once, however often the pool is synced.
		f.run()
		f.expectEvents()
	})
}

// The pool's status is a merge patch of its four fields, sent only when
// they changed, and progress is paced.
func TestSyncStatusWrite(t *testing.T) {
	tmpl := newTemplate("python")
	t.Run("unchanged: no write", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(1, "")
		pool.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: 1, ReadyReplicas: 1, ObservedGeneration: 1,
			Selector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool")}
		f.seed(pool, tmpl.DeepCopy(), member(pool, tmpl, "m", time.Hour, true))
		if requeue := f.run(); requeue != 0 {
			t.Errorf("requeue = %s, want none for a settled pool", requeue)
		}
		f.expectActions()
	})
	t.Run("zero counts are written", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(0, "")
		pool.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: 1, ReadyReplicas: 1, ObservedGeneration: 1}
		f.seed(pool, tmpl.DeepCopy())
		f.run()
		f.expectActions(patchPoolStatus(statusPatch(0, 0)))
	})
	t.Run("progress within the interval is held", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(3, "")
		pool.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: 3, ReadyReplicas: 1, ObservedGeneration: 1,
			Selector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool")}
		f.seed(pool, tmpl.DeepCopy(),
			member(pool, tmpl, "a", time.Hour, true), member(pool, tmpl, "b", time.Minute, true), member(pool, tmpl, "c", time.Minute, false))
		f.c.statusPacer.wrote(poolKeyString, now.Add(-300*time.Millisecond))
		if requeue := f.run(); requeue <= 0 || requeue > 700*time.Millisecond {
			t.Errorf("requeue = %s, want the rest of the 1s interval", requeue)
		}
		f.expectActions()
		f.clock.Step(time.Second)
		f.run()
		f.expectActions(patchPoolStatus(statusPatch(3, 2)))
	})
}

// While earlier writes are not all visible, a pass creates and deletes
// nothing but still reports status.
func TestSyncHonoursExpectations(t *testing.T) {
	tmpl := newTemplate("python")
	t.Run("creates pending: no create", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(3, "")
		f.seed(pool, tmpl.DeepCopy(), member(pool, tmpl, "a", time.Hour, true))
		if !f.c.expectations.TryExpectCreations(poolKeyString, 2) {
			t.Fatal("could not raise the expectation")
		}
		if requeue := f.run(); requeue != expectationsRecheck {
			t.Errorf("requeue = %s, want the %s recheck", requeue, expectationsRecheck)
		}
		f.expectActions(patchPoolStatus(statusPatch(1, 1)))
		f.expectEvents()
	})
	t.Run("creates pending: no delete", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(1, "")
		f.seed(pool, tmpl.DeepCopy(), member(pool, tmpl, "a", time.Hour, true), member(pool, tmpl, "b", time.Hour, true))
		f.c.expectations.ExpectCreations(poolKeyString, 1)
		f.run()
		f.expectActions(patchPoolStatus(statusPatch(2, 2)))
	})
	t.Run("a pending delete counts as terminating", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(2, "")
		f.seed(pool, tmpl.DeepCopy(), member(pool, tmpl, "a", time.Hour, true), member(pool, tmpl, "b", time.Hour, true))
		f.c.expectations.ExpectDeletions(poolKeyString, "uid-b")
		f.run()
		// One active and one going: neither a create nor a second delete.
		f.expectActions(patchPoolStatus(statusPatch(1, 1)))
	})
	t.Run("the next pass does not create again", func(t *testing.T) {
		f := newFixture(t)
		pool := newPool(2, "")
		f.seed(pool, tmpl.DeepCopy())
		f.run()
		f.expectActions(append(repeat(createMember(t, tmpl), 2), patchPoolStatus(statusPatch(0, 0)))...)
		// Nothing observed yet: the same view must not create twice, nor
		// send the status it already sent from this cached pool
		// (controller.StatusWriter).
		f.run()
		f.expectActions()
	})
}
