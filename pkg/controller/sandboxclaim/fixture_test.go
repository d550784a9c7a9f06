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
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	k8sfake "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// The fixture follows sample-controller's controller_test.go: a
// controller on fake clientsets whose informers are never started. Tests
// seed the informer indexers (and the fake trackers, so writes find their
// objects), call sync for one key, and compare every action the clients
// saw, bodies included, with the list they expect.
//
// Events: the controller's recorder is replaced by events.FakeRecorder, so
// Events never reach the kube clientset (its broadcaster is never started)
// and are checked on their own with expectEvents; the kube clientset must
// see no action at all, which expectActions checks.

const ns = "team"

// now is the fake clock's time; claims are created well before it, past
// the young claim's wait for starting members.
var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        testing.TB
	kube     *k8sfake.Clientset
	agents   *fake.Clientset
	inf      informers.SharedInformerFactory
	clock    *clocktesting.FakeClock
	recorder *events.FakeRecorder
	c        *Controller
}

func newFixture(t testing.TB, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, kube: k8sfake.NewSimpleClientset(), agents: fake.NewSimpleClientset(), clock: clocktesting.NewFakeClock(now)}
	f.inf = informers.NewSharedInformerFactory(f.agents, 0)
	_, ctx := ktesting.NewTestContext(t)
	c, err := NewController(ctx, f.kube, f.agents, f.inf.Extensions().V1beta1().SandboxClaims(),
		f.inf.Extensions().V1beta1().SandboxWarmPools(), f.inf.Extensions().V1beta1().SandboxTemplates(),
		f.inf.Agents().V1beta1().Sandboxes(), Options{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.recorder = events.NewFakeRecorder(100)
	c.recorder = f.recorder
	f.c = c
	for _, o := range objs {
		f.add(o)
	}
	return f
}

// add puts obj in the fake API and in the informer cache.
func (f *fixture) add(obj runtime.Object) {
	f.t.Helper()
	var err error
	if sb, ok := obj.(*agentsv1beta1.Sandbox); ok {
		// The fake tracker would guess "sandboxs" from the kind.
		err = f.agents.Tracker().Create(agentsv1beta1.SandboxesResource, sb, sb.Namespace)
	} else {
		err = f.agents.Tracker().Add(obj)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.cache(obj)
}

// cache puts obj in (or updates it in) the informer cache only, as a
// watch event would.
func (f *fixture) cache(obj runtime.Object) {
	f.t.Helper()
	if err := f.indexer(obj).Update(obj); err != nil {
		f.t.Fatal(err)
	}
}

// uncache removes obj from the informer cache only.
func (f *fixture) uncache(obj runtime.Object) {
	f.t.Helper()
	if err := f.indexer(obj).Delete(obj); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) indexer(obj runtime.Object) cache.Indexer {
	f.t.Helper()
	switch obj.(type) {
	case *agentsv1beta1.Sandbox:
		return f.inf.Agents().V1beta1().Sandboxes().Informer().GetIndexer()
	case *extv1beta1.SandboxClaim:
		return f.inf.Extensions().V1beta1().SandboxClaims().Informer().GetIndexer()
	case *extv1beta1.SandboxWarmPool:
		return f.inf.Extensions().V1beta1().SandboxWarmPools().Informer().GetIndexer()
	case *extv1beta1.SandboxTemplate:
		return f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer()
	}
	f.t.Fatalf("cannot cache %T", obj)
	return nil
}

// run syncs the claim name once, with the clients' action logs cleared.
func (f *fixture) run(name string) (time.Duration, error) {
	f.t.Helper()
	f.kube.ClearActions()
	f.agents.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	return f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: name})
}

// runOK is run that must succeed.
func (f *fixture) runOK(name string) time.Duration {
	f.t.Helper()
	requeue, err := f.run(name)
	if err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	return requeue
}

// action is the comparable form of a client action: Body is the patch
// (decoded from JSON, so key order does not matter), the created object,
// or the delete options.
type action struct {
	Verb, Resource, Subresource, Namespace, Name string
	Body                                         any
}

func (f *fixture) actions() []action {
	f.t.Helper()
	var out []action
	for _, a := range f.agents.Actions() {
		if a.GetVerb() == "watch" {
			continue // only an informer would watch
		}
		got := action{Verb: a.GetVerb(), Resource: a.GetResource().Resource, Subresource: a.GetSubresource(), Namespace: a.GetNamespace()}
		switch a := a.(type) {
		case k8stesting.PatchAction:
			got.Name, got.Body = a.GetName(), decode(f.t, a.GetPatch())
		case k8stesting.CreateAction:
			got.Name, got.Body = a.GetObject().(metav1.Object).GetName(), a.GetObject()
		case k8stesting.DeleteAction:
			got.Name, got.Body = a.GetName(), a.GetDeleteOptions()
		case k8stesting.GetAction:
			got.Name = a.GetName()
		case k8stesting.ListAction:
			// The informers never run here: a list is the controller's
			// own read, and its selector is what it asked for.
			got.Body = a.GetListRestrictions().Labels.String()
		default:
			f.t.Fatalf("unexpected action %#v", a)
		}
		out = append(out, got)
	}
	return out
}

// expectActions compares the full list of the last run's actions.
func (f *fixture) expectActions(want ...action) {
	f.t.Helper()
	if diff := cmp.Diff(want, f.actions()); diff != "" {
		f.t.Errorf("actions (-want,+got):\n%s", diff)
	}
	if kube := f.kube.Actions(); len(kube) > 0 {
		f.t.Errorf("the claim controller sent kube API requests: %v", kube)
	}
}

// expectEvents compares the Events recorded since the last call.
func (f *fixture) expectEvents(want ...string) {
	f.t.Helper()
	var got []string
	for len(f.recorder.Events) > 0 {
		got = append(got, <-f.recorder.Events)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("events (-want,+got):\n%s", diff)
	}
}

func decode(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// body decodes a literal JSON body for an expected action.
func body(t *testing.T, s string) any {
	t.Helper()
	return decode(t, []byte(s))
}

func patchSandbox(t *testing.T, name, patch string) action {
	return action{Verb: "patch", Resource: "sandboxes", Namespace: ns, Name: name, Body: body(t, patch)}
}

func patchClaimStatus(t *testing.T, name, patch string) action {
	return action{Verb: "patch", Resource: "sandboxclaims", Subresource: "status", Namespace: ns, Name: name, Body: body(t, patch)}
}

// Objects. The template runs one container and manages no NetworkPolicy,
// so secure defaults only turn off the service-account token.

func newTemplate() *extv1beta1.SandboxTemplate {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "python", UID: "tmpl-uid", ResourceVersion: "1"}}
	tmpl.Spec.PodTemplate.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "python:3.13"}}}
	tmpl.Spec.NetworkPolicyManagement = extv1beta1.NetworkPolicyManagementUnmanaged
	return tmpl
}

func newPool() *extv1beta1.SandboxWarmPool {
	return &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pool", UID: "pool-uid", Generation: 1},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(int32(3)), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
}

func newClaim(name string, mutate ...func(*extv1beta1.SandboxClaim)) *extv1beta1.SandboxClaim {
	claim := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-uid"), ResourceVersion: "10", Generation: 1,
			CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))},
		Spec: extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "pool"}},
	}
	for _, m := range mutate {
		m(claim)
	}
	return claim
}

// memberState is how far a pool member has come.
type memberState int

const (
	memberStarting memberState = iota // no Pod IP yet
	memberUp                          // Pod IP, not Ready
	memberReady
)

// readySince is the LastTransitionTime of every Ready member.
var readySince = metav1.NewTime(now.Add(-30 * time.Second))

// newMember is a member of newPool running newTemplate, as the pool
// controller makes them; age orders members (older first).
func newMember(name string, state memberState, age time.Duration) *agentsv1beta1.Sandbox {
	tmpl, pool := newTemplate(), newPool()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(name + "-uid"), ResourceVersion: "5", Generation: 1,
			CreationTimestamp: metav1.NewTime(now.Add(-age)),
			Labels: map[string]string{
				agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash(pool.Name),
				agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
				agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
			},
			Annotations:     map[string]string{agentsv1beta1.WarmPoolMemberAnnotation: string(pool.UID)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: *tmpl.Spec.SandboxBlueprint.DeepCopy(), OperatingMode: agentsv1beta1.SandboxOperatingModeRunning},
	}
	sandboxpolicy.SecureDefaults{}.Apply(tmpl, &sb.Spec.PodTemplate.Spec)
	switch state {
	case memberReady:
		sb.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: agentsv1beta1.SandboxReasonDependenciesReady, LastTransitionTime: readySince}}
		fallthrough
	case memberUp:
		sb.Status.PodIPs = []string{"127.0.0.10"}
		sb.Status.NodeName = "node-a"
	}
	return sb
}

// takeover is the patch that moves member name (at resourceVersion 5, as
// newMember makes it) from the pool to claim.
func takeover(t *testing.T, claim *extv1beta1.SandboxClaim, name string) action {
	return takeoverAt(t, claim, name, "5")
}

// takeoverAt is takeover of a member at resourceVersion rv.
func takeoverAt(t *testing.T, claim *extv1beta1.SandboxClaim, name, rv string) action {
	return patchSandbox(t, name, `{"metadata":{
		"resourceVersion":"`+rv+`",
		"ownerReferences":[{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","name":"`+claim.Name+`","uid":"`+string(claim.UID)+`","controller":true,"blockOwnerDeletion":true}],
		"labels":{
			"agents.x-k8s.io/launch-type":"warm",
			"agents.x-k8s.io/claim-uid":"`+string(claim.UID)+`",
			"agents.x-k8s.io/sandbox-template-ref-hash":"`+agentsv1beta1.NameHash("python")+`",
			"agents.x-k8s.io/warm-pool-sandbox":null,
			"agents.x-k8s.io/sandbox-template-hash":null,
			"agents.x-k8s.io/sandbox-pod-template-hash":null,
			"agents.x-k8s.io/created-by":null},
		"annotations":{"agents.x-k8s.io/warm-pool-member":null}}}`)
}
