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

package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	core "k8s.io/client-go/testing"
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
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const ns = "team"

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fixture is a controller on fake clients whose informers are never
// started: tests seed the caches directly and call sync.
type fixture struct {
	t        *testing.T
	kube     *k8sfake.Clientset
	agents   *fake.Clientset
	c        *Controller
	recorder *events.FakeRecorder
	kubeInf  kubeinformers.SharedInformerFactory
	agentInf informers.SharedInformerFactory
}

func newFixture(t *testing.T, sandboxes []*agentsv1beta1.Sandbox, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, kube: k8sfake.NewSimpleClientset(objs...), agents: fake.NewSimpleClientset()}
	for _, sb := range sandboxes {
		// The fake tracker would guess "sandboxs" from the kind.
		if err := f.agents.Tracker().Create(agentsv1beta1.SandboxesResource, sb, sb.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	f.kubeInf = kubeinformers.NewSharedInformerFactory(f.kube, 0)
	f.agentInf = informers.NewSharedInformerFactory(f.agents, 0)
	_, ctx := ktesting.NewTestContext(t)
	c, err := NewController(ctx, f.kube, func(ns string) SandboxClient { return f.agents.AgentsV1beta1().Sandboxes(ns) },
		f.agentInf.Agents().V1beta1().Sandboxes().Informer(),
		f.kubeInf.Core().V1().Pods(), f.kubeInf.Core().V1().Services(), f.kubeInf.Core().V1().PersistentVolumeClaims(),
		Options{Clock: clocktesting.NewFakeClock(now), Owners: sandboxpolicy.SandboxOwners()})
	if err != nil {
		t.Fatal(err)
	}
	f.recorder = events.NewFakeRecorder(10)
	c.recorder = f.recorder
	f.c = c
	for _, sb := range sandboxes {
		f.seed(sb)
	}
	for _, o := range objs {
		f.seed(o)
	}
	return f
}

func (f *fixture) seed(obj runtime.Object) {
	f.t.Helper()
	var store cache.Store
	switch obj.(type) {
	case *agentsv1beta1.Sandbox:
		store = f.agentInf.Agents().V1beta1().Sandboxes().Informer().GetStore()
	case *corev1.Pod:
		store = f.kubeInf.Core().V1().Pods().Informer().GetStore()
	case *corev1.Service:
		store = f.kubeInf.Core().V1().Services().Informer().GetStore()
	case *corev1.PersistentVolumeClaim:
		store = f.kubeInf.Core().V1().PersistentVolumeClaims().Informer().GetStore()
	default:
		f.t.Fatalf("cannot seed %T", obj)
	}
	if err := store.Add(obj); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sync(name string) {
	f.t.Helper()
	f.kube.ClearActions()
	f.agents.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	if _, err := f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: name}); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

// action is the comparable gist of a client action.
type action struct {
	Verb, Resource, Subresource, Name string
}

// writes returns the write actions of both clients, list and watch noise
// removed, in order kube then agents.
func (f *fixture) writes() []action {
	var out []action
	for _, a := range append(f.kube.Actions(), f.agents.Actions()...) {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetVerb() == "get" {
			continue
		}
		name := ""
		switch a := a.(type) {
		case core.CreateAction: // and UpdateAction: the same method set
			name = a.GetObject().(metav1.Object).GetName()
		case core.DeleteAction:
			name = a.GetName()
		case core.PatchAction:
			name = a.GetName()
		}
		out = append(out, action{a.GetVerb(), a.GetResource().Resource, a.GetSubresource(), name})
	}
	return out
}

// patchedStatus decodes the status patch the sync sent.
func (f *fixture) patchedSandbox(name string) *agentsv1beta1.Sandbox {
	f.t.Helper()
	obj, err := f.agents.Tracker().Get(agentsv1beta1.SandboxesResource, ns, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return obj.(*agentsv1beta1.Sandbox)
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func sandbox(name string, mutate ...func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name + "-uid"), Generation: 1},
		Spec: agentsv1beta1.SandboxSpec{
			SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "agent", Image: "python", Ports: []corev1.ContainerPort{{ContainerPort: 8888}}}},
			}}},
			OperatingMode: agentsv1beta1.SandboxOperatingModeRunning,
		},
	}
	for _, m := range mutate {
		m(sb)
	}
	return sb
}

func ownedPod(sb *agentsv1beta1.Sandbox, name string, ready bool) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(name + "-pod-uid"),
			Labels:          map[string]string{agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash(sb.Name)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sb, agentsv1beta1.SandboxGroupVersionKind)},
		},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if ready {
		pod.Status = corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIPs:     []corev1.PodIP{{IP: "127.10.0.7"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		}
	}
	return pod
}

func TestSyncCreatesChildrenInOrder(t *testing.T) {
	sb := sandbox("fresh", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.Service = ptr.To(true)
		sb.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{{
			EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}}
	})
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb})
	f.sync("fresh")

	want := []action{
		{"create", "persistentvolumeclaims", "", "data-fresh"},
		{"create", "pods", "", "fresh"},
		{"create", "services", "", "fresh"},
		{"patch", "sandboxes", "status", "fresh"},
	}
	if diff := cmp.Diff(want, f.writes()); diff != "" {
		t.Fatalf("writes (-want,+got):\n%s", diff)
	}
	if n := len(f.events()); n != 3 {
		t.Errorf("%d events, want one SuccessfulCreate per child", n)
	}
	if adds, _ := f.c.expectations.Pending("team/fresh"); adds != 1 {
		t.Errorf("pending creates %d, want 1 until the informer shows the Pod", adds)
	}
	got := f.patchedSandbox("fresh")
	ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	if ready == nil || ready.Reason != agentsv1beta1.SandboxReasonDependenciesNotReady {
		t.Errorf("Ready = %+v, want DependenciesNotReady while the Pod starts", ready)
	}
	if got.Status.Service != "fresh" || got.Status.LabelSelector != "agents.x-k8s.io/sandbox-name-hash="+agentsv1beta1.NameHash("fresh") {
		t.Errorf("status service %q selector %q", got.Status.Service, got.Status.LabelSelector)
	}
}

func TestSyncWaitsForExpectations(t *testing.T) {
	sb := sandbox("waiting")
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb})
	f.c.expectations.ExpectCreations("team/waiting", 1)
	f.sync("waiting")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes %v while our own create is not yet visible; want none", w)
	}
}

func TestSyncSteadyStateWritesNothing(t *testing.T) {
	sb := sandbox("steady")
	pod := ownedPod(sb, "steady", true)
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, pod)
	f.sync("steady")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "steady"}}, f.writes()); diff != "" {
		t.Fatalf("first sync writes (-want,+got):\n%s", diff)
	}
	// Feed the written status back, as the informer would.
	f.seed(f.patchedSandbox("steady"))
	f.sync("steady")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("second sync writes %v; want none", w)
	}
}

func TestSyncSuspendDeletesOnlyTheOwnedPod(t *testing.T) {
	sb := sandbox("sleepy", func(sb *agentsv1beta1.Sandbox) { sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended })
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, ownedPod(sb, "sleepy", true))
	f.sync("sleepy")
	want := []action{{"delete", "pods", "", "sleepy"}, {"patch", "sandboxes", "status", "sleepy"}}
	if diff := cmp.Diff(want, f.writes()); diff != "" {
		t.Fatalf("writes (-want,+got):\n%s", diff)
	}
	got := f.patchedSandbox("sleepy")
	for typ, reason := range map[string]string{"Ready": "SandboxSuspended", "Suspended": "PodTerminating"} {
		if c := meta.FindStatusCondition(got.Status.Conditions, typ); c == nil || c.Reason != reason {
			t.Errorf("%s = %+v, want reason %s", typ, c, reason)
		}
	}
	if _, dels := f.c.expectations.Pending("team/sleepy"); len(dels) != 1 {
		t.Errorf("pending deletes %v, want the Pod", dels)
	}

	// A Pod someone else owns is never deleted.
	foreign := ownedPod(sb, "sleepy", true)
	foreign.OwnerReferences[0].UID = "someone-else"
	f = newFixture(t, []*agentsv1beta1.Sandbox{sb}, foreign)
	f.sync("sleepy")
	for _, w := range f.writes() {
		if w.Verb == "delete" {
			t.Errorf("deleted a foreign Pod: %v", w)
		}
	}
	if c := meta.FindStatusCondition(f.patchedSandbox("sleepy").Status.Conditions, "Suspended"); c == nil || c.Reason != "PodNotOwned" {
		t.Errorf("Suspended = %+v, want PodNotOwned", c)
	}
}

func TestSyncMultiplePodsFailsClosedOnce(t *testing.T) {
	sb := sandbox("twins", func(sb *agentsv1beta1.Sandbox) { sb.Spec.Service = ptr.To(true) })
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, ownedPod(sb, "twins", true), ownedPod(sb, "twins-b", true))
	f.sync("twins")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "twins"}}, f.writes()); diff != "" {
		t.Fatalf("writes (-want,+got): no create, no delete, no Service write\n%s", diff)
	}
	got := f.events()
	if len(got) != 1 || !strings.HasPrefix(got[0], "Warning MultiplePods") {
		t.Fatalf("events %q, want one Warning MultiplePods", got)
	}
	f.seed(f.patchedSandbox("twins"))
	f.sync("twins")
	if got := f.events(); len(got) != 0 {
		t.Errorf("repeated events %q", got)
	}
}

func TestSyncExpiryIsTwoPass(t *testing.T) {
	sb := sandbox("old", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.ShutdownTime = &metav1.Time{Time: now} // expiry is inclusive
		sb.Spec.ShutdownPolicy = ptr.To(agentsv1beta1.ShutdownPolicyDelete)
	})
	pod := ownedPod(sb, "old", true)
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, pod)
	f.sync("old")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "old"}}, f.writes()); diff != "" {
		t.Fatalf("pass one writes (-want,+got): expiry recorded before any teardown\n%s", diff)
	}
	f.seed(f.patchedSandbox("old"))
	f.sync("old")
	want := []action{{"delete", "pods", "", "old"}, {"delete", "sandboxes", "", "old"}}
	if diff := cmp.Diff(want, f.writes()); diff != "" {
		t.Errorf("pass two writes (-want,+got):\n%s", diff)
	}
}

func TestApplyPodMetadataScrubsWhatOlderControllersCopied(t *testing.T) {
	sb := sandbox("meta", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.PodTemplate.ObjectMeta.Labels = map[string]string{"keep": "1"}
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{
			"keep": "0", "gone": "x", "foreign": "y",
			agentsv1beta1.SandboxIDLabel:       "leaked",
			agentsv1beta1.SandboxNameHashLabel: "wrong",
		},
		Annotations: map[string]string{
			agentsv1beta1.PropagatedLabelsAnnotation: strings.Join([]string{"gone", "keep", agentsv1beta1.SandboxIDLabel, agentsv1beta1.SandboxNameHashLabel}, ","),
		},
	}}
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	wantLabels := map[string]string{"keep": "1", "foreign": "y", agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash("meta")}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want,+got):\n%s", diff)
	}
	wantAnnotations := map[string]string{agentsv1beta1.PropagatedLabelsAnnotation: "keep"}
	if diff := cmp.Diff(wantAnnotations, pod.Annotations); diff != "" {
		t.Errorf("annotations (-want,+got):\n%s", diff)
	}
}

func TestServicePorts(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	spec := &corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 9000}, {ContainerPort: 8080, Name: "http"}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
			{Name: "b", Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "web"}, {ContainerPort: 7000, Name: "p-9000-tcp"}, {ContainerPort: 0}}},
		},
		InitContainers: []corev1.Container{
			{Name: "sidecar", RestartPolicy: &always, Ports: []corev1.ContainerPort{{ContainerPort: 15000}}},
			{Name: "init", Ports: []corev1.ContainerPort{{ContainerPort: 16000}}},
		},
	}
	var got []string
	for _, p := range ServicePorts(spec) {
		b, _ := json.Marshal([]any{p.Name, p.Protocol, p.Port, p.TargetPort.IntVal})
		got = append(got, string(b))
	}
	want := []string{
		`["p-53-udp","UDP",53,53]`,
		`["p-9000-tcp","TCP",7000,7000]`,
		`["http","TCP",8080,8080]`,
		`["p-9000-tcp-2","TCP",9000,9000]`,
		`["p-15000-tcp","TCP",15000,15000]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ports (-want,+got):\n%s", diff)
	}
}

// With FirstStatusDelay, a new Sandbox whose Pod is starting writes no
// status until the delay has passed since its creation (the Pod's Ready
// usually comes first, and then one write says it all); afterwards, or
// with anything to report, it writes at once.
func TestSyncHoldsOnlyTheFirstNotReadyStatus(t *testing.T) {
	created := metav1.NewTime(now.Add(-500 * time.Millisecond).Truncate(time.Second))
	fresh := sandbox("fresh", func(sb *agentsv1beta1.Sandbox) { sb.CreationTimestamp = created })
	f := newFixture(t, []*agentsv1beta1.Sandbox{fresh}, ownedPod(fresh, "fresh", false))
	f.c.opts.FirstStatusDelay = 2 * time.Second
	_, ctx := ktesting.NewTestContext(t)
	requeue, err := f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: "fresh"})
	if err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes %v while the first status is held", w)
	}
	if want := created.Add(2 * time.Second).Sub(now); requeue != want {
		t.Errorf("requeue %s, want %s (the end of the delay)", requeue, want)
	}

	// The Pod became Ready: one write with everything.
	f.seed(ownedPod(fresh, "fresh", true))
	f.sync("fresh")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "fresh"}}, f.writes()); diff != "" {
		t.Fatalf("writes once Ready (-want,+got):\n%s", diff)
	}
	if ready := meta.FindStatusCondition(f.patchedSandbox("fresh").Status.Conditions, "Ready"); ready == nil || ready.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %+v, want True", ready)
	}

	// Past the delay, a still-starting Pod is reported.
	old := sandbox("old", func(sb *agentsv1beta1.Sandbox) { sb.CreationTimestamp = metav1.NewTime(now.Add(-3 * time.Second)) })
	f = newFixture(t, []*agentsv1beta1.Sandbox{old}, ownedPod(old, "old", false))
	f.c.opts.FirstStatusDelay = 2 * time.Second
	f.sync("old")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "old"}}, f.writes()); diff != "" {
		t.Errorf("writes past the delay (-want,+got):\n%s", diff)
	}

	// Suspension is reported at once.
	sleepy := sandbox("sleepy", func(sb *agentsv1beta1.Sandbox) {
		sb.CreationTimestamp = created
		sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	})
	f = newFixture(t, []*agentsv1beta1.Sandbox{sleepy})
	f.c.opts.FirstStatusDelay = 2 * time.Second
	f.sync("sleepy")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "sleepy"}}, f.writes()); diff != "" {
		t.Errorf("writes for a suspended Sandbox (-want,+got):\n%s", diff)
	}
}

// A Sandbox that already has a status and whose Pod is merely scheduled
// (nodeName set, not Ready) writes nothing: the new nodeName rides along
// with the next write, the Ready transition, instead of costing one of its
// own per Pod.
func TestSyncNodeNameRidesAlongWithReadiness(t *testing.T) {
	sb := sandbox("sched")
	unscheduled := ownedPod(sb, "sched", false)
	unscheduled.Spec.NodeName = ""
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, unscheduled)
	f.c.opts.FirstStatusDelay = 0
	f.sync("sched")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "sched"}}, f.writes()); diff != "" {
		t.Fatalf("the first status (-want,+got):\n%s", diff)
	}
	// The cache shows that status; then the scheduler binds the Pod.
	withStatus := f.patchedSandbox("sched")
	withStatus.ResourceVersion = "2"
	f.seed(withStatus)
	f.seed(ownedPod(sb, "sched", false))
	f.sync("sched")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes %v for a nodeName change alone", w)
	}

	f.seed(ownedPod(sb, "sched", true))
	f.sync("sched")
	if diff := cmp.Diff([]action{{"patch", "sandboxes", "status", "sched"}}, f.writes()); diff != "" {
		t.Fatalf("writes once Ready (-want,+got):\n%s", diff)
	}
	if got := f.patchedSandbox("sched").Status.NodeName; got != "node-a" {
		t.Errorf("nodeName %q after the Ready write, want node-a", got)
	}
}

// With a write-behind window, the metadata patch of an owned Pod waits for
// the window (the pass asks to be requeued at its end) and is then written
// once, from what the template says by then.
func TestSyncWriteBehindDefersPodMetadata(t *testing.T) {
	sb := sandbox("wb", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.PodTemplate.ObjectMeta.Labels = map[string]string{"team": "blue"}
	})
	pod := ownedPod(sb, "wb", true)
	f := newFixture(t, []*agentsv1beta1.Sandbox{sb}, pod)
	f.c.opts.FirstStatusDelay = 0
	f.c.writeBehind = newWriteBehind(500 * time.Millisecond)
	_, ctx := ktesting.NewTestContext(t)
	key := cache.ObjectName{Namespace: ns, Name: "wb"}

	f.kube.ClearActions()
	requeue, err := f.c.sync(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range f.writes() {
		if w.Resource == "pods" {
			t.Fatalf("pod patched at once: %v", f.writes())
		}
	}
	if requeue != 500*time.Millisecond {
		t.Errorf("requeue %s, want the 500ms window", requeue)
	}

	// The template changes again within the window: still one patch, at
	// the end, with the latest labels.
	sb.Spec.PodTemplate.ObjectMeta.Labels = map[string]string{"team": "green"}
	f.seed(sb)
	f.c.opts.Clock.(*clocktesting.FakeClock).Step(500 * time.Millisecond)
	f.sync("wb")
	var patches int
	for _, a := range f.kube.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "pods" {
			patches++
			if p := string(a.(core.PatchAction).GetPatch()); !strings.Contains(p, `"team":"green"`) {
				t.Errorf("patch %s lacks the latest label", p)
			}
		}
	}
	if patches != 1 {
		t.Errorf("%d pod patches after the window, want 1", patches)
	}
	if rem := f.c.writeBehind.remaining("team/wb", f.c.opts.Clock.Now()); rem != 0 {
		t.Errorf("a deferral is still pending after the write: %s", rem)
	}
}

// A warm pool's member gets its Pod without a per-member Event (the pool
// reports each batch); any other Sandbox gets one.
func TestNoPodCreatedEventForPoolMembers(t *testing.T) {
	pool := &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", UID: "pool-uid"}}
	member := sandbox("pool-abc", func(sb *agentsv1beta1.Sandbox) {
		sb.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)}
	})
	f := newFixture(t, []*agentsv1beta1.Sandbox{member})
	f.sync("pool-abc")
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("pool member's Pod creation emitted %v", ev)
	}
	own := sandbox("mine")
	f = newFixture(t, []*agentsv1beta1.Sandbox{own})
	f.sync("mine")
	if ev := f.events(); len(ev) != 1 {
		t.Errorf("a Sandbox's Pod creation emitted %v, want one SuccessfulCreate", ev)
	}
}
