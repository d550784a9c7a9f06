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

package sandboxtemplate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
)

const conflictEvent = "Warning NetworkPolicyConflict NetworkPolicy python-network-policy exists and is not controlled by this template; refusing to change it"

// foreignPolicy is a user's own policy under template python's policy name.
func foreignPolicy() *networkingv1.NetworkPolicy {
	np := policy(nil, networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}})
	np.UID = "users-np-uid"
	return np
}

// queued drains the controller's queue.
func (f *fixture) queued() []cache.ObjectName {
	var keys []cache.ObjectName
	for f.c.queue.Len() > 0 {
		key, _ := f.c.queue.Get()
		keys = append(keys, key)
		f.c.queue.Done(key)
		f.c.queue.Forget(key)
	}
	return keys
}

// A template whose policy name a user's NetworkPolicy holds: the pass
// succeeds (no retry), writes nothing and says so once; later passes
// while the conflict stands say nothing; deleting the user's policy wakes
// the template, which then gets its own.
func TestPolicyConflictReportedOnceThenResolved(t *testing.T) {
	f := newFixture(t)
	users := foreignPolicy()
	f.seed(template(), users)

	for pass := range 3 {
		if err := f.run(); err != nil {
			t.Fatalf("pass %d: sync error %v: the workqueue would retry a conflict only a user can settle", pass, err)
		}
		f.expectActions()
		if pass == 0 {
			controllertest.ExpectEvents(t, f.recorder, conflictEvent)
		} else {
			controllertest.ExpectEvents(t, f.recorder)
		}
	}
	if got := f.queued(); len(got) != 0 {
		t.Errorf("queue holds %v after the conflict passes, want nothing", got)
	}

	// The user deletes the policy; its delete event wakes the template.
	if err := f.kubeInf.Networking().V1().NetworkPolicies().Informer().GetIndexer().Delete(users); err != nil {
		t.Fatal(err)
	}
	if err := f.kube.Tracker().Delete(networkingv1.SchemeGroupVersion.WithResource("networkpolicies"), ns, users.Name); err != nil {
		t.Fatal(err)
	}
	f.c.enqueuePolicyTemplates(cache.DeletedFinalStateUnknown{Key: ns + "/" + users.Name, Obj: users})
	if diff := cmp.Diff([]cache.ObjectName{{Namespace: ns, Name: "python"}}, f.queued()); diff != "" {
		t.Errorf("keys woken by the user's policy delete (-want,+got):\n%s", diff)
	}
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	f.expectActions(controllertest.Action{Verb: "create", Resource: "networkpolicies", Namespace: ns, Name: "python-network-policy",
		Object: &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python-network-policy", OwnerReferences: controllerRef("tmpl-uid")},
			Spec:       secureDefault(),
		}})
	controllertest.ExpectEvents(t, f.recorder, "Normal SuccessfulCreate Created NetworkPolicy python-network-policy")
	if n := f.c.conflicts.len(); n != 0 {
		t.Errorf("%d conflicts remembered after the conflict ended, want 0", n)
	}
}

// A new episode is reported again: another foreign policy under the name,
// or the same conflict after the template was deleted and made again.
func TestPolicyConflictNewEpisodeReportedAgain(t *testing.T) {
	f := newFixture(t)
	users := foreignPolicy()
	f.seed(template(), users)
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	controllertest.ExpectEvents(t, f.recorder, conflictEvent)

	// The user replaces the policy by another of the same name.
	replaced := foreignPolicy()
	replaced.UID = "users-second-np-uid"
	if err := f.kubeInf.Networking().V1().NetworkPolicies().Informer().GetIndexer().Update(replaced); err != nil {
		t.Fatal(err)
	}
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	controllertest.ExpectEvents(t, f.recorder, conflictEvent)

	// The template is deleted: its delete event forgets the episode.
	tmpl := template()
	if err := f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer().Delete(tmpl); err != nil {
		t.Fatal(err)
	}
	f.c.templateDeleted(tmpl)
	if n := f.c.conflicts.len(); n != 0 {
		t.Errorf("%d conflicts remembered after the template's delete event, want 0", n)
	}
	if diff := cmp.Diff([]cache.ObjectName{{Namespace: ns, Name: "python"}}, f.queued()); diff != "" {
		t.Errorf("keys queued by the template's delete (-want,+got):\n%s", diff)
	}
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	controllertest.ExpectEvents(t, f.recorder)

	// Made again under the same name, it is told again.
	if err := f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer().Add(template(func(t *extv1beta1.SandboxTemplate) {
		t.UID = "tmpl-uid-2"
	})); err != nil {
		t.Fatal(err)
	}
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	f.expectActions()
	controllertest.ExpectEvents(t, f.recorder, conflictEvent)

	// Made Unmanaged, it has no conflict left to remember.
	if err := f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer().Update(template(func(t *extv1beta1.SandboxTemplate) {
		t.Spec.NetworkPolicyManagement = extv1beta1.NetworkPolicyManagementUnmanaged
	})); err != nil {
		t.Fatal(err)
	}
	if err := f.run(); err != nil {
		t.Fatal(err)
	}
	if n := f.c.conflicts.len(); n != 0 {
		t.Errorf("%d conflicts remembered for an Unmanaged template, want 0", n)
	}
}

// Every NetworkPolicy event wakes the template whose policy name it has,
// whoever controls it, and the template controlling it.
func TestPolicyEventsWakeTemplates(t *testing.T) {
	otherTemplate := controllerRef("other-uid")
	otherTemplate[0].Name = "other"
	for name, tc := range map[string]struct {
		policy *networkingv1.NetworkPolicy
		want   []cache.ObjectName
	}{
		"a user's policy under a template's policy name": {
			policy: foreignPolicy(),
			want:   []cache.ObjectName{{Namespace: ns, Name: "python"}},
		},
		"a template's own policy": {
			policy: policy(controllerRef("tmpl-uid"), secureDefault()),
			want:   []cache.ObjectName{{Namespace: ns, Name: "python"}},
		},
		"one template's policy under another's policy name: both": {
			policy: policy(otherTemplate, secureDefault()),
			want:   []cache.ObjectName{{Namespace: ns, Name: "other"}, {Namespace: ns, Name: "python"}},
		},
		"a user's policy under no template's policy name": {
			policy: func() *networkingv1.NetworkPolicy { np := foreignPolicy(); np.Name = "deny-all"; return np }(),
		},
		"a user's policy named only the suffix": {
			policy: func() *networkingv1.NetworkPolicy { np := foreignPolicy(); np.Name = "-network-policy"; return np }(),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.c.enqueuePolicyTemplates(tc.policy)
			if diff := cmp.Diff(tc.want, f.queued()); diff != "" {
				t.Errorf("keys woken (-want,+got):\n%s", diff)
			}
		})
	}
}
