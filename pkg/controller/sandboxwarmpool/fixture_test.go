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
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

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
	kubeinformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const ns = "team"

// pool is the name of the pool every test syncs.
const pool = "pool"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a pool controller on fake clientsets whose informers never
// run (sample-controller style): tests seed the indexers and the fake
// trackers, call sync for one key, and compare every API action.
type fixture struct {
	t        *testing.T
	kube     *k8sfake.Clientset
	client   *fake.Clientset
	kubeInf  kubeinformers.SharedInformerFactory
	inf      informers.SharedInformerFactory
	clock    *clocktesting.FakeClock
	recorder *events.FakeRecorder
	c        *Controller

	mu sync.Mutex
	// creates counts the Sandbox creates the fake served; createErr, when
	// set, fails the nth one (1-based).
	creates   int
	createErr func(n int) error
}

func newFixture(t *testing.T, opts ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, kube: k8sfake.NewSimpleClientset(), client: fake.NewSimpleClientset(), clock: clocktesting.NewFakeClock(now)}
	f.kubeInf = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.inf = informers.NewSharedInformerFactory(f.client, 0)
	// The fake tracker neither honours generateName nor assigns UIDs; the
	// API server does both, and the pool relies on them.
	f.client.PrependReactor("create", "sandboxes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sb := a.(k8stesting.CreateAction).GetObject().(*agentsv1beta1.Sandbox).DeepCopy()
		f.mu.Lock()
		f.creates++
		n, fail := f.creates, f.createErr
		f.mu.Unlock()
		if fail != nil {
			if err := fail(n); err != nil {
				return true, nil, err
			}
		}
		if sb.Name == "" {
			sb.Name = fmt.Sprintf("%sgen%d", sb.GenerateName, n)
		}
		sb.UID = types.UID("uid-" + sb.Name)
		sb.Generation = 1
		return true, sb, f.client.Tracker().Create(agentsv1beta1.SandboxesResource, sb, sb.Namespace)
	})
	o := Options{Clock: f.clock}
	for _, set := range opts {
		set(&o)
	}
	pods := f.kubeInf.Core().V1().Pods()
	_, ctx := ktesting.NewTestContext(t)
	c, err := NewController(ctx, f.kube, f.client, f.inf.Extensions().V1beta1().SandboxWarmPools(), f.inf.Extensions().V1beta1().SandboxTemplates(),
		f.inf.Agents().V1beta1().Sandboxes(), pods.Lister(), func() bool { return true }, o)
	if err != nil {
		t.Fatal(err)
	}
	f.recorder = events.NewFakeRecorder(100)
	c.recorder = f.recorder
	// The informers never run: their caches are what the test seeded.
	c.synced = nil
	f.c = c
	return f
}

// seed puts objects in the informers' indexers and in the fake API.
func (f *fixture) seed(objs ...runtime.Object) {
	f.t.Helper()
	for _, obj := range objs {
		var indexer cache.Indexer
		var gvr = agentsv1beta1.SandboxesResource
		switch obj.(type) {
		case *agentsv1beta1.Sandbox:
			indexer = f.inf.Agents().V1beta1().Sandboxes().Informer().GetIndexer()
		case *extv1beta1.SandboxWarmPool:
			indexer, gvr = f.inf.Extensions().V1beta1().SandboxWarmPools().Informer().GetIndexer(), extv1beta1.SandboxWarmPoolsResource
		case *extv1beta1.SandboxTemplate:
			indexer, gvr = f.inf.Extensions().V1beta1().SandboxTemplates().Informer().GetIndexer(), extv1beta1.SandboxTemplatesResource
		case *corev1.Pod:
			if err := f.kubeInf.Core().V1().Pods().Informer().GetIndexer().Add(obj); err != nil {
				f.t.Fatal(err)
			}
			continue
		default:
			f.t.Fatalf("cannot seed %T", obj)
		}
		if err := indexer.Add(obj); err != nil {
			f.t.Fatal(err)
		}
		// Through the tracker with the resource named: the fake would guess
		// "sandboxs" for Sandbox.
		if err := f.client.Tracker().Create(gvr, obj, obj.(metav1.Object).GetNamespace()); err != nil {
			f.t.Fatal(err)
		}
	}
}

// unseed removes a Sandbox from the indexer, as its delete event would.
func (f *fixture) unseed(sb *agentsv1beta1.Sandbox) {
	f.t.Helper()
	if err := f.inf.Agents().V1beta1().Sandboxes().Informer().GetIndexer().Delete(sb); err != nil {
		f.t.Fatal(err)
	}
}

// run syncs the pool ns/pool once, after clearing the recorded actions,
// and fails the test on an error.
func (f *fixture) run() time.Duration {
	f.t.Helper()
	requeue, err := f.runErr()
	if err != nil {
		f.t.Fatalf("sync %s: %v", pool, err)
	}
	return requeue
}

func (f *fixture) runErr() (time.Duration, error) {
	f.t.Helper()
	f.kube.ClearActions()
	f.client.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	return f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: pool})
}

// action is everything a test asserts about one API call.
type action = controllertest.Action

// actions returns the API calls of both clients since the last run.
func (f *fixture) actions() []action { return controllertest.Actions(&f.kube.Fake, &f.client.Fake) }

// expectActions compares the recorded calls with want, in order.
func (f *fixture) expectActions(want ...action) {
	f.t.Helper()
	controllertest.ExpectActions(f.t, want, &f.kube.Fake, &f.client.Fake)
}

// expectEvents compares the Events recorded since the last call with want.
func (f *fixture) expectEvents(want ...string) {
	f.t.Helper()
	controllertest.ExpectEvents(f.t, f.recorder, want...)
}

// newPool is a pool of replicas from template "tmpl".
func newPool(replicas int32, strategy extv1beta1.SandboxWarmPoolUpdateStrategyType) *extv1beta1.SandboxWarmPool {
	p := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pool", UID: "pool-uid", Generation: 1, ResourceVersion: "10"},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(replicas), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "tmpl"}},
	}
	if strategy != "" {
		p.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{Type: strategy}
	}
	return p
}

// newTemplate is template "tmpl" running image.
func newTemplate(image string) *extv1beta1.SandboxTemplate {
	t := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tmpl", UID: "tmpl-uid", ResourceVersion: "1"}}
	t.Spec.PodTemplate.Spec.Containers = []corev1.Container{{Name: "agent", Image: image}}
	return t
}

// member is a Sandbox the pool made from tmpl, created age ago, with the
// API server's name, UID and resourceVersion.
func member(pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate, name string, age time.Duration, ready bool) *agentsv1beta1.Sandbox {
	hashes, err := sandboxpolicy.HashTemplate(tmpl)
	if err != nil {
		panic(err)
	}
	sb := newMember(pool, tmpl, hashes, false, sandboxpolicy.SecureDefaults{})
	sb.GenerateName = ""
	sb.Name, sb.UID, sb.ResourceVersion, sb.Generation = name, types.UID("uid-"+name), "rv-"+name, 1
	sb.CreationTimestamp = metav1.NewTime(now.Add(-age))
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	sb.Status.Conditions = []metav1.Condition{{Type: string(agentsv1beta1.SandboxConditionReady), Status: status, Reason: "Test"}}
	return sb
}

// statusPatch is the pool's status merge patch at generation 1, spelled
// out.
func statusPatch(replicas, ready int) string {
	return fmt.Sprintf(`{"status":{"observedGeneration":1,"readyReplicas":%d,"replicas":%d,"selector":"%s=%s"}}`,
		ready, replicas, agentsv1beta1.WarmPoolSandboxLabel, agentsv1beta1.NameHash("pool"))
}

func patchPoolStatus(patch string) action {
	return action{Verb: "patch", Resource: "sandboxwarmpools", Subresource: "status", Namespace: ns, Name: "pool",
		PatchType: types.MergePatchType, Patch: patch}
}

func deleteMember(sb *agentsv1beta1.Sandbox) action {
	return action{Verb: "delete", Resource: "sandboxes", Namespace: ns, Name: sb.Name,
		Preconditions: &metav1.Preconditions{UID: ptr.To(sb.UID), ResourceVersion: ptr.To(sb.ResourceVersion)}}
}

// sortedStrings returns a sorted copy of s.
func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
