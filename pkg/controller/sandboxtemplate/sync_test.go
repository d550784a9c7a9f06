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
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	k8sfake "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
	kubeinformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
)

const ns = "team"

// fixture is a template controller on fake clientsets whose informers
// never run: tests seed the indexers and trackers, sync one key and
// compare every API action.
type fixture struct {
	t        *testing.T
	kube     *k8sfake.Clientset
	client   *fake.Clientset
	kubeInf  kubeinformers.SharedInformerFactory
	inf      informers.SharedInformerFactory
	recorder *events.FakeRecorder
	c        *Controller
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, kube: k8sfake.NewSimpleClientset(), client: fake.NewSimpleClientset()}
	f.kubeInf = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.inf = informers.NewSharedInformerFactory(f.client, 0)
	_, ctx := ktesting.NewTestContext(t)
	c, err := NewController(ctx, f.kube, f.client, f.inf.Extensions().V1beta1().SandboxTemplates(),
		f.kubeInf.Networking().V1().NetworkPolicies(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.recorder = events.NewFakeRecorder(10)
	c.recorder = f.recorder
	f.c = c
	return f
}

// seed puts objects in the informers' indexers and in the fake API.
func (f *fixture) seed(objs ...runtime.Object) {
	f.t.Helper()
	for _, obj := range objs {
		switch o := obj.(type) {
		case *extv1beta1.SandboxTemplate:
			if err := f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer().Add(o); err != nil {
				f.t.Fatal(err)
			}
			if err := f.client.Tracker().Create(extv1beta1.SandboxTemplatesResource, o, o.Namespace); err != nil {
				f.t.Fatal(err)
			}
		case *networkingv1.NetworkPolicy:
			if err := f.kubeInf.Networking().V1().NetworkPolicies().Informer().GetIndexer().Add(o); err != nil {
				f.t.Fatal(err)
			}
			if err := f.kube.Tracker().Add(o); err != nil {
				f.t.Fatal(err)
			}
		default:
			f.t.Fatalf("cannot seed %T", obj)
		}
	}
}

// run syncs template ns/python once, after clearing the recorded actions.
func (f *fixture) run() error {
	f.t.Helper()
	f.kube.ClearActions()
	f.client.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	requeue, err := f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: "python"})
	if requeue != 0 {
		f.t.Errorf("requeue %s: the template controller has no time-driven work", requeue)
	}
	return err
}

// expectActions compares the calls with want: the kube client's (the
// policy) first, then the agents client's (the template's label).
func (f *fixture) expectActions(want ...controllertest.Action) {
	f.t.Helper()
	controllertest.ExpectActions(f.t, want, &f.kube.Fake, &f.client.Fake)
}

func template(mutate ...func(*extv1beta1.SandboxTemplate)) *extv1beta1.SandboxTemplate {
	t := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: "python", UID: "tmpl-uid",
		Labels: map[string]string{agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python")},
	}}
	for _, m := range mutate {
		m(t)
	}
	return t
}

func controllerRef(uid types.UID) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "extensions.agents.x-k8s.io/v1beta1", Kind: "SandboxTemplate", Name: "python",
		UID: uid, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
}

// secureDefault is the default policy of template "python", spelled out
// (the blocked ranges are the package's lists: the tests write no
// private or public address of their own).
func secureDefault() networkingv1.NetworkPolicySpec {
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"agents.x-k8s.io/sandbox-template-ref-hash": agentsv1beta1.NameHash("python")}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "agent-sandbox-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "sandbox-router"}},
		}}}},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: privateIPv4}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: privateIPv6}},
		}}},
	}
}

func policy(owner []metav1.OwnerReference, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python-network-policy", UID: "np-uid", ResourceVersion: "7", OwnerReferences: owner},
		Spec:       spec,
	}
}

func TestSync(t *testing.T) {
	ownRules := &extv1beta1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
	}}}
	withOwnRules := secureDefault()
	withOwnRules.Ingress, withOwnRules.Egress = ownRules.Ingress, nil
	stale := secureDefault()
	stale.Ingress = nil
	unmanaged := func(t *extv1beta1.SandboxTemplate) {
		t.Spec.NetworkPolicyManagement = extv1beta1.NetworkPolicyManagementUnmanaged
	}
	foreign := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "other", UID: "other-uid", Controller: ptr.To(true)}}

	for name, tc := range map[string]struct {
		tmpl   *extv1beta1.SandboxTemplate
		policy *networkingv1.NetworkPolicy
		want   []controllertest.Action
		events []string
	}{
		"Managed, no policy: the secure default is created": {
			tmpl: template(),
			want: []controllertest.Action{{Verb: "create", Resource: "networkpolicies", Namespace: ns, Name: "python-network-policy",
				Object: &networkingv1.NetworkPolicy{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python-network-policy", OwnerReferences: controllerRef("tmpl-uid")},
					Spec:       secureDefault(),
				}}},
			events: []string{"Normal SuccessfulCreate Created NetworkPolicy python-network-policy"},
		},
		"Managed with its own rules: those are created": {
			tmpl: template(func(t *extv1beta1.SandboxTemplate) { t.Spec.NetworkPolicy = ownRules }),
			want: []controllertest.Action{{Verb: "create", Resource: "networkpolicies", Namespace: ns, Name: "python-network-policy",
				Object: &networkingv1.NetworkPolicy{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python-network-policy", OwnerReferences: controllerRef("tmpl-uid")},
					Spec:       withOwnRules,
				}}},
			events: []string{"Normal SuccessfulCreate Created NetworkPolicy python-network-policy"},
		},
		"owned policy out of date: updated whole, resourceVersion kept": {
			tmpl:   template(),
			policy: policy(controllerRef("tmpl-uid"), stale),
			want: []controllertest.Action{{Verb: "update", Resource: "networkpolicies", Namespace: ns, Name: "python-network-policy",
				Object: policy(controllerRef("tmpl-uid"), secureDefault())}},
			events: []string{"Normal SuccessfulUpdate Updated NetworkPolicy python-network-policy"},
		},
		"in sync: no write": {
			tmpl:   template(),
			policy: policy(controllerRef("tmpl-uid"), secureDefault()),
		},
		"Unmanaged with an owned policy: deleted by UID": {
			tmpl:   template(unmanaged),
			policy: policy(controllerRef("tmpl-uid"), secureDefault()),
			want: []controllertest.Action{{Verb: "delete", Resource: "networkpolicies", Namespace: ns, Name: "python-network-policy",
				Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("np-uid"))}}},
			events: []string{"Normal SuccessfulDelete Deleted NetworkPolicy python-network-policy: the template is Unmanaged"},
		},
		"Unmanaged with someone else's policy: left alone": {
			tmpl:   template(unmanaged),
			policy: policy(foreign, stale),
		},
		"Unmanaged, no policy: nothing": {
			tmpl: template(unmanaged),
		},
		"policy of an earlier template of the same name: a conflict, not touched, not retried": {
			tmpl:   template(),
			policy: policy(controllerRef("earlier-tmpl-uid"), stale),
			events: []string{"Warning NetworkPolicyConflict NetworkPolicy python-network-policy exists and is not controlled by this template; refusing to change it"},
		},
		"template without its name-hash label: labelled first": {
			tmpl:   template(func(t *extv1beta1.SandboxTemplate) { t.Labels = nil }),
			policy: policy(controllerRef("tmpl-uid"), secureDefault()),
			want: []controllertest.Action{{Verb: "patch", Resource: "sandboxtemplates", Namespace: ns, Name: "python", PatchType: types.MergePatchType,
				Patch: fmt.Sprintf(`{"metadata":{"labels":{"agents.x-k8s.io/sandbox-template-ref-hash":%q}}}`, agentsv1beta1.NameHash("python"))}},
		},
		"template being deleted: the garbage collector's turn": {
			tmpl: template(func(t *extv1beta1.SandboxTemplate) {
				t.DeletionTimestamp = ptr.To(metav1.Now())
				t.Finalizers = []string{"example.com/hold"}
			}),
			policy: policy(controllerRef("tmpl-uid"), stale),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(tc.tmpl)
			if tc.policy != nil {
				f.seed(tc.policy)
			}
			if err := f.run(); err != nil {
				t.Errorf("sync error %v: no case here is worth a retry", err)
			}
			f.expectActions(tc.want...)
			controllertest.ExpectEvents(t, f.recorder, tc.events...)
		})
	}
	t.Run("template gone: nothing", func(t *testing.T) {
		f := newFixture(t)
		f.seed(policy(controllerRef("tmpl-uid"), stale))
		if err := f.run(); err != nil {
			t.Error(err)
		}
		f.expectActions()
	})
}
