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

package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// fakeCluster is the fake clientset plus a scripted stand-in for the claim
// and sandbox controllers.
type fakeCluster struct {
	t  *testing.T
	cs *fake.Clientset
	// onCreate runs in its own goroutine for every created claim.
	onCreate func(claim *extensionsv1beta1.SandboxClaim)
	wg       sync.WaitGroup
	seq      atomic.Int32
}

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{t: t, cs: fake.NewSimpleClientset()}
	for _, o := range objs {
		fc.seed(o)
	}
	// The fake tracker does not implement generateName; the API server
	// does. The mutated action is what the tracker stores, while
	// cs.Actions() keeps the object as the SDK sent it.
	fc.cs.PrependReactor("create", "sandboxclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		claim := a.(k8stesting.CreateAction).GetObject().(*extensionsv1beta1.SandboxClaim)
		if claim.Name == "" && claim.GenerateName != "" {
			claim.Name = fmt.Sprintf("%s%05d", claim.GenerateName, fc.seq.Add(1))
		}
		if fc.onCreate != nil {
			c := claim.DeepCopy()
			fc.wg.Add(1)
			go func() {
				defer fc.wg.Done()
				// The reactor runs before the tracker stores the
				// claim; a controller only ever sees stored claims.
				for deadline := time.Now().Add(5 * time.Second); !fc.claimExists(c.Namespace, c.Name); {
					if time.Now().After(deadline) {
						fc.t.Errorf("claim %s never stored", c.Name)
						return
					}
					time.Sleep(time.Millisecond)
				}
				fc.onCreate(c)
			}()
		}
		return false, nil, nil
	})
	t.Cleanup(fc.wg.Wait)
	return fc
}

// seed adds an object under the right resource: the tracker would guess
// "sandboxs" for the Sandbox kind.
func (fc *fakeCluster) seed(o runtime.Object) {
	fc.t.Helper()
	var err error
	switch o := o.(type) {
	case *agentsv1beta1.Sandbox:
		err = fc.cs.Tracker().Create(agentsv1beta1.SandboxesResource, o, o.Namespace)
	case *extensionsv1beta1.SandboxClaim:
		err = fc.cs.Tracker().Create(extensionsv1beta1.SandboxClaimsResource, o, o.Namespace)
	default:
		err = fmt.Errorf("unexpected seed %T", o)
	}
	if err != nil {
		fc.t.Fatalf("seeding: %v", err)
	}
}

func (fc *fakeCluster) updateSandbox(sb *agentsv1beta1.Sandbox) {
	if err := fc.cs.Tracker().Update(agentsv1beta1.SandboxesResource, sb, sb.Namespace); err != nil {
		fc.t.Errorf("updating sandbox: %v", err)
	}
}

func (fc *fakeCluster) updateClaim(c *extensionsv1beta1.SandboxClaim) {
	if err := fc.cs.Tracker().Update(extensionsv1beta1.SandboxClaimsResource, c, c.Namespace); err != nil {
		fc.t.Errorf("updating claim: %v", err)
	}
}

func (fc *fakeCluster) claimExists(ns, name string) bool {
	_, err := fc.cs.Tracker().Get(extensionsv1beta1.SandboxClaimsResource, ns, name)
	return err == nil
}

// actions returns the recorded actions without list and watch noise.
func (fc *fakeCluster) actions() []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range fc.cs.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// onFirstWatch runs change when the SDK first watches resource: after the
// list that started the wait, so only a watch event or a fresh list can
// show the change. The fake's own watch misses changes made before it
// starts, so the watch is registered with the tracker before change runs;
// with expire, that watch instead fails at once with 410 Gone, as a watch
// from a compacted resourceVersion does, and only a fresh list shows it.
func (fc *fakeCluster) onFirstWatch(resource string, expire bool, change func()) {
	var once sync.Once
	fc.cs.PrependWatchReactor(resource, func(a k8stesting.Action) (bool, watch.Interface, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return false, nil, nil
		}
		if expire {
			change()
			w := watch.NewFakeWithChanSize(1, false)
			w.Error(&apierrors.NewResourceExpired("too old").ErrStatus)
			return true, w, nil
		}
		w, err := fc.cs.Tracker().Watch(a.GetResource(), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		change()
		return true, w, nil
	})
}

func (fc *fakeCluster) client(opts ...ClientOption) *Client {
	fc.t.Helper()
	c, err := NewClientForClientset(fc.cs, append([]ClientOption{WithRouterURL("http://127.0.0.1:1")}, opts...)...)
	if err != nil {
		fc.t.Fatalf("NewClientForClientset: %v", err)
	}
	return c
}

func readyCondition(status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: "Ready", Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

// suspendedSandbox is a suspended Sandbox with wake-on-request set to
// wake.
func suspendedSandbox(ns, name, wake string) *agentsv1beta1.Sandbox {
	sb := newSandboxObj(ns, name, false)
	sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	sb.Annotations = map[string]string{agentsv1beta1.WakeOnRequestAnnotation: wake}
	return sb
}

func newSandboxObj(ns, name string, ready bool, ips ...string) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	sb.Status.PodIPs = ips
	if ready {
		sb.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady, "")}
	} else {
		sb.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionFalse, agentsv1beta1.SandboxReasonDependenciesNotReady, "Pod is not ready")}
	}
	return sb
}

func boundClaim(ns, name, sandbox string) *extensionsv1beta1.SandboxClaim {
	c := &extensionsv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.WarmPoolRef.Name = "pool"
	c.Status.SandboxStatus = extensionsv1beta1.SandboxStatus{Name: sandbox}
	return c
}

// bindWarm plays the controllers for a warm claim: after a pause the claim
// names a Sandbox that exists but is not Ready, and after another pause the
// Sandbox turns Ready. The pauses let the SDK reach its watches first.
func (fc *fakeCluster) bindWarm(claim *extensionsv1beta1.SandboxClaim) {
	const sandboxName = "warm-abcde"
	time.Sleep(20 * time.Millisecond)
	sb := newSandboxObj(claim.Namespace, sandboxName, false)
	sb.Annotations = map[string]string{agentsv1beta1.PodNameAnnotation: "warm-pod-xyz"}
	fc.seed(sb)
	claim.Status.SandboxStatus.Name = sandboxName
	fc.updateClaim(claim)
	time.Sleep(20 * time.Millisecond)
	sb = sb.DeepCopy()
	sb.Status.PodIPs = []string{"fd00::7", "127.30.1.3"}
	sb.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady, "")}
	fc.updateSandbox(sb)
}

func TestCreateClaimShapeAndReady(t *testing.T) {
	fc := newFakeCluster(t)
	fc.onCreate = fc.bindWarm
	c := fc.client()

	before := time.Now().UTC()
	shutdown := before.Add(time.Hour)
	sb, err := c.Create(t.Context(), "python-pool",
		WithNamespace("team-a"),
		WithLabels(map[string]string{"app": "agent", agentsv1beta1.CreatedByLabel: "spoofed"}),
		WithAnnotations(map[string]string{"note": "x"}),
		WithShutdownTime(shutdown),
		WithTTLAfterFinished(90*time.Second+time.Millisecond),
		WithShutdownPolicy(extensionsv1beta1.ShutdownPolicyDelete),
	)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	after := time.Now().UTC()

	acts := fc.actions()
	if len(acts) != 1 || acts[0].GetVerb() != "create" {
		t.Fatalf("want one create action, got %v", acts)
	}
	sent := acts[0].(k8stesting.CreateAction).GetObject().(*extensionsv1beta1.SandboxClaim)
	if acts[0].GetNamespace() != "team-a" || sent.Namespace != "team-a" {
		t.Errorf("namespace: action %q object %q, want team-a", acts[0].GetNamespace(), sent.Namespace)
	}
	if sent.Name != "" || sent.GenerateName != "sandbox-claim-" {
		t.Errorf("name %q generateName %q, want generateName sandbox-claim-", sent.Name, sent.GenerateName)
	}
	wantLabels := map[string]string{"app": "agent", agentsv1beta1.CreatedByLabel: "go-client"}
	if d := cmp.Diff(wantLabels, sent.Labels); d != "" {
		t.Errorf("labels (-want,+got):\n%s", d)
	}
	ts := sent.Annotations[extensionsv1beta1.ClientFirstRequestedAtAnnotation]
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !strings.HasSuffix(ts, "Z") || at.Before(before) || at.After(after) {
		t.Errorf("client-first-requested-at %q: want RFC3339Nano UTC within the call (err %v)", ts, err)
	}
	if sent.Annotations["note"] != "x" {
		t.Errorf("annotation note missing: %v", sent.Annotations)
	}
	wantSpec := extensionsv1beta1.SandboxClaimSpec{
		WarmPoolRef: extensionsv1beta1.SandboxWarmPoolRef{Name: "python-pool"},
		Lifecycle: &extensionsv1beta1.Lifecycle{
			ShutdownTime:            &metav1.Time{Time: shutdown},
			TTLSecondsAfterFinished: ptr[int32](91),
			ShutdownPolicy:          extensionsv1beta1.ShutdownPolicyDelete,
		},
	}
	if d := cmp.Diff(wantSpec, sent.Spec); d != "" {
		t.Errorf("spec (-want,+got):\n%s", d)
	}

	got := map[string]string{
		"namespace": sb.Namespace(), "claim": sb.ClaimName(), "sandbox": sb.SandboxName(),
		"pod": sb.PodName(), "podIP": sb.PodIP(),
	}
	want := map[string]string{
		"namespace": "team-a", "claim": "sandbox-claim-00001", "sandbox": "warm-abcde",
		"pod": "warm-pod-xyz", "podIP": "127.30.1.3",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("identity (-want,+got):\n%s", d)
	}
	if !sb.IsOpen() {
		t.Error("handle not open")
	}
}

func TestCreateTTL(t *testing.T) {
	before := time.Now()
	claim := buildClaim("pool", createConfig{namespace: "default"}, before)
	if claim.Spec.Lifecycle != nil {
		t.Errorf("no lifecycle options: want nil lifecycle, got %+v", claim.Spec.Lifecycle)
	}
	var cc createConfig
	WithTTL(30 * time.Minute).applyCreate(&cc)
	claim = buildClaim("pool", cc, before)
	lc := claim.Spec.Lifecycle
	if lc == nil || lc.ShutdownTime == nil {
		t.Fatalf("WithTTL: want shutdownTime, got %+v", lc)
	}
	if d := lc.ShutdownTime.Sub(before); d < 30*time.Minute || d > 30*time.Minute+time.Minute {
		t.Errorf("shutdownTime is %v after creation, want ~30m", d)
	}
	if lc.ShutdownPolicy != "" || lc.TTLSecondsAfterFinished != nil {
		t.Errorf("WithTTL set more than shutdownTime: %+v", lc)
	}
	if lc.ShutdownTime.Location() != time.UTC {
		t.Errorf("shutdownTime not UTC: %v", lc.ShutdownTime)
	}
}

func TestCreateKeepsCallerFirstRequestedAt(t *testing.T) {
	cc := createConfig{annotations: map[string]string{extensionsv1beta1.ClientFirstRequestedAtAnnotation: "2020-01-01T00:00:00Z"}}
	claim := buildClaim("pool", cc, time.Now())
	if got := claim.Annotations[extensionsv1beta1.ClientFirstRequestedAtAnnotation]; got != "2020-01-01T00:00:00Z" {
		t.Errorf("got %q, want the caller's value", got)
	}
}

func TestCreateFailures(t *testing.T) {
	tests := map[string]struct {
		onCreate func(fc *fakeCluster, claim *extensionsv1beta1.SandboxClaim)
		// setup, if set, runs before Create.
		setup   func(fc *fakeCluster)
		timeout time.Duration
		wantIs  error
		wantMsg []string
	}{
		"sandbox never Ready names its conditions": {
			onCreate: func(fc *fakeCluster, claim *extensionsv1beta1.SandboxClaim) {
				fc.seed(newSandboxObj(claim.Namespace, claim.Name, false, "127.30.0.1"))
				claim.Status.SandboxStatus.Name = claim.Name
				fc.updateClaim(claim)
			},
			timeout: 300 * time.Millisecond,
			wantIs:  ErrTimeout,
			wantMsg: []string{"to become Ready", "Ready=False (DependenciesNotReady: Pod is not ready)"},
		},
		"claim never bound names the claim's conditions": {
			onCreate: func(fc *fakeCluster, claim *extensionsv1beta1.SandboxClaim) {
				claim.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionFalse, extensionsv1beta1.ClaimReasonWarmPoolNotFound, "no pool")}
				fc.updateClaim(claim)
			},
			timeout: 300 * time.Millisecond,
			wantIs:  ErrTimeout,
			wantMsg: []string{"to be bound", "Ready=False (WarmPoolNotFound: no pool)"},
		},
		// The SDK's list shows the Sandbox and its watch shows the
		// delete: the wait fails at once, not at its timeout.
		"sandbox deleted while waiting": {
			onCreate: func(fc *fakeCluster, claim *extensionsv1beta1.SandboxClaim) {
				fc.seed(newSandboxObj(claim.Namespace, "sb-1", false))
				claim.Status.SandboxStatus.Name = "sb-1"
				fc.updateClaim(claim)
			},
			setup: func(fc *fakeCluster) {
				fc.onFirstWatch("sandboxes", false, func() {
					if err := fc.cs.Tracker().Delete(agentsv1beta1.SandboxesResource, "default", "sb-1"); err != nil {
						fc.t.Errorf("deleting sandbox: %v", err)
					}
				})
			},
			timeout: time.Minute,
			wantIs:  ErrSandboxDeleted,
		},
		"claim deleted while waiting": {
			setup: func(fc *fakeCluster) {
				fc.onFirstWatch("sandboxclaims", false, func() {
					if err := fc.cs.Tracker().Delete(extensionsv1beta1.SandboxClaimsResource, "default", "sandbox-claim-00001"); err != nil {
						fc.t.Errorf("deleting claim: %v", err)
					}
				})
			},
			timeout: time.Minute,
			wantIs:  ErrSandboxDeleted,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fc := newFakeCluster(t)
			if tc.onCreate != nil {
				fc.onCreate = func(c *extensionsv1beta1.SandboxClaim) { tc.onCreate(fc, c) }
			}
			if tc.setup != nil {
				tc.setup(fc)
			}
			c := fc.client()
			start := time.Now()
			sb, err := c.Create(t.Context(), "pool", WithReadyTimeout(tc.timeout))
			if err == nil {
				t.Fatalf("Create succeeded: %v", sb)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v: want errors.Is %v", err, tc.wantIs)
			}
			if time.Since(start) > tc.timeout+2*time.Second {
				t.Errorf("Create took %v, timeout %v", time.Since(start), tc.timeout)
			}
			for _, m := range append(tc.wantMsg, "sandbox[default/sandbox-claim-00001]") {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			fc.wg.Wait()
			if fc.claimExists("default", "sandbox-claim-00001") {
				t.Error("claim not rolled back")
			}
			last := fc.actions()[len(fc.actions())-1]
			if last.GetVerb() != "delete" || last.GetResource().Resource != "sandboxclaims" {
				t.Errorf("last action %v, want delete of the claim", last)
			}
		})
	}
}

func TestCreateCallerCancelRollsBack(t *testing.T) {
	fc := newFakeCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	fc.onCreate = func(*extensionsv1beta1.SandboxClaim) {
		time.Sleep(30 * time.Millisecond)
		cancel()
	}
	_, err := fc.client().Create(ctx, "pool")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v: want context.Canceled", err)
	}
	if errors.Is(err, ErrTimeout) {
		t.Errorf("a cancellation is not a timeout: %v", err)
	}
	if fc.claimExists("default", "sandbox-claim-00001") {
		t.Error("claim not deleted after the caller cancelled: the rollback must use a fresh context")
	}
}

func TestCreateRollbackFailureJoinsErrors(t *testing.T) {
	fc := newFakeCluster(t)
	fc.cs.PrependReactor("delete", "sandboxclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(extensionsv1beta1.SandboxClaimsResource.GroupResource(), "x", errors.New("no delete"))
	})
	_, err := fc.client().Create(t.Context(), "pool", WithReadyTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrTimeout) || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "rolling back") {
		t.Fatalf("error %v: want both the timeout and the rollback failure", err)
	}
}

func TestCreateClaimRejected(t *testing.T) {
	fc := newFakeCluster(t)
	fc.cs.PrependReactor("create", "sandboxclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(extensionsv1beta1.SandboxClaimsResource.GroupResource(), "", errors.New("denied"))
	})
	_, err := fc.client().Create(t.Context(), "pool")
	if !errors.Is(err, ErrClaimFailed) || !apierrors.IsForbidden(err) {
		t.Fatalf("error %v: want ErrClaimFailed wrapping Forbidden", err)
	}
	for _, a := range fc.actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("nothing to roll back, but got %v", a)
		}
	}
}

func TestCreateInvalidArguments(t *testing.T) {
	fc := newFakeCluster(t)
	c := fc.client()
	for name, tc := range map[string]struct {
		pool string
		opts []CreateOption
	}{
		"bad pool":      {pool: "Bad_Pool"},
		"bad namespace": {pool: "pool", opts: []CreateOption{WithNamespace("a.b")}},
		"bad policy":    {pool: "pool", opts: []CreateOption{WithShutdownPolicy("Never")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Create(t.Context(), tc.pool, tc.opts...); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error %v: want ErrInvalidArgument", err)
			}
		})
	}
	if n := len(fc.cs.Actions()); n != 0 {
		t.Errorf("invalid arguments reached the API: %d actions", n)
	}
}

// TestCreateRelistsAfterWatchError makes the first watch of each resource
// fail with 410 Gone right after the change the SDK waits for (the claim
// bound, then the Sandbox Ready): only a fresh list can show it.
func TestCreateRelistsAfterWatchError(t *testing.T) {
	fc := newFakeCluster(t)
	const ns, claimName, sandboxName = "default", "sandbox-claim-00001", "warm-abcde"
	sb := newSandboxObj(ns, sandboxName, false)
	fc.onFirstWatch("sandboxclaims", true, func() {
		fc.seed(sb)
		obj, err := fc.cs.Tracker().Get(extensionsv1beta1.SandboxClaimsResource, ns, claimName)
		if err != nil {
			t.Errorf("getting the claim: %v", err)
			return
		}
		claim := obj.(*extensionsv1beta1.SandboxClaim).DeepCopy()
		claim.Status.SandboxStatus.Name = sandboxName
		fc.updateClaim(claim)
	})
	fc.onFirstWatch("sandboxes", true, func() {
		fc.updateSandbox(newSandboxObj(ns, sandboxName, true, "127.30.1.3"))
	})
	got, err := fc.client().Create(t.Context(), "pool", WithReadyTimeout(time.Minute))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.SandboxName() != sandboxName || got.PodIP() != "127.30.1.3" {
		t.Errorf("sandbox %q pod IP %q", got.SandboxName(), got.PodIP())
	}
	lists := map[string]int{}
	for _, a := range fc.cs.Actions() {
		switch a.GetVerb() {
		case "list":
			lists[a.GetResource().Resource]++
		case "watch":
			if rv := a.(k8stesting.WatchAction).GetWatchRestrictions().ResourceVersion; rv == "" {
				t.Errorf("watch without resourceVersion: %v", a)
			}
		}
	}
	want := map[string]int{"sandboxclaims": 2, "sandboxes": 2}
	if d := cmp.Diff(want, lists); d != "" {
		t.Errorf("lists per resource (-want,+got):\n%s", d)
	}
}

// BenchmarkCreateBound measures what the SDK's own waiting adds to a Create
// whose claim is bound, and whose Sandbox is Ready, when it is stored: a
// create, then the first list of the claim and of the Sandbox. (Waiting for
// each first list with WaitForCacheSync's 100 ms poll, as UntilWithSync
// does, made this about 200 ms per Create.)
func BenchmarkCreateBound(b *testing.B) {
	cs := fake.NewSimpleClientset()
	// Seeded under its resource: the tracker would guess "sandboxs".
	if err := cs.Tracker().Create(agentsv1beta1.SandboxesResource, newSandboxObj("default", "sb", true, "127.30.0.9"), "default"); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int32
	cs.PrependReactor("create", "sandboxclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		claim := a.(k8stesting.CreateAction).GetObject().(*extensionsv1beta1.SandboxClaim)
		claim.Name = fmt.Sprintf("%s%05d", claim.GenerateName, seq.Add(1))
		claim.Status.SandboxStatus.Name = "sb"
		return false, nil, nil
	})
	c, err := NewClientForClientset(cs, WithRouterURL("http://127.0.0.1:1"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Create(b.Context(), "pool"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCreateDirectModeWaitsForPodIP(t *testing.T) {
	fc := newFakeCluster(t)
	fc.onCreate = func(claim *extensionsv1beta1.SandboxClaim) {
		sb := newSandboxObj(claim.Namespace, claim.Name, true) // Ready, no IP yet
		fc.seed(sb)
		claim.Status.SandboxStatus.Name = claim.Name
		fc.updateClaim(claim)
		time.Sleep(30 * time.Millisecond)
		sb = sb.DeepCopy()
		sb.Status.PodIPs = []string{"127.30.8.7"}
		fc.updateSandbox(sb)
	}
	c, err := NewClientForClientset(fc.cs, WithDirectPodIP())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := c.Create(t.Context(), "pool")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if sb.PodIP() != "127.30.8.7" {
		t.Errorf("pod IP %q", sb.PodIP())
	}
}

func TestAttach(t *testing.T) {
	const ns = "default"
	tests := map[string]struct {
		objs    []runtime.Object
		opts    []AttachOption
		later   func(fc *fakeCluster)
		wantIs  error
		wantMsg string
		// noIP: attached without a Pod IP (a suspended Sandbox has none).
		noIP bool
	}{
		"ready": {
			objs: []runtime.Object{boundClaim(ns, "c1", "sb1"), newSandboxObj(ns, "sb1", true, "127.30.0.5")},
		},
		"claim missing": {
			wantIs: ErrSandboxDeleted,
		},
		"claim not bound": {
			objs:   []runtime.Object{boundClaim(ns, "c1", "")},
			wantIs: ErrNotReady,
		},
		"sandbox missing": {
			objs:   []runtime.Object{boundClaim(ns, "c1", "sb1")},
			wantIs: ErrSandboxDeleted,
		},
		"sandbox not ready": {
			objs:    []runtime.Object{boundClaim(ns, "c1", "sb1"), newSandboxObj(ns, "sb1", false)},
			wantIs:  ErrNotReady,
			wantMsg: "DependenciesNotReady",
		},
		"suspended, wakes on request": {
			objs: []runtime.Object{boundClaim(ns, "c1", "sb1"), suspendedSandbox(ns, "sb1", agentsv1beta1.WakeOnRequestEnabled)},
			noIP: true,
		},
		"suspended, not opted in": {
			objs:    []runtime.Object{boundClaim(ns, "c1", "sb1"), suspendedSandbox(ns, "sb1", "yes")},
			wantIs:  ErrNotReady,
			wantMsg: "not Ready",
		},
		"wait for ready": {
			objs: []runtime.Object{boundClaim(ns, "c1", "sb1"), newSandboxObj(ns, "sb1", false)},
			opts: []AttachOption{WithWaitForReady(), WithReadyTimeout(5 * time.Second)},
			later: func(fc *fakeCluster) {
				time.Sleep(30 * time.Millisecond)
				fc.updateSandbox(newSandboxObj(ns, "sb1", true, "127.30.0.5"))
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fc := newFakeCluster(t, tc.objs...)
			if tc.later != nil {
				go tc.later(fc)
			}
			sb, err := fc.client().Attach(t.Context(), "c1", tc.opts...)
			if tc.wantIs != nil {
				if !errors.Is(err, tc.wantIs) {
					t.Fatalf("error %v: want %v", err, tc.wantIs)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "sandbox[default/c1]") {
					t.Errorf("error %q: want prefix sandbox[default/c1] and %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Attach: %v", err)
			}
			wantIP := "127.30.0.5"
			if tc.noIP {
				wantIP = ""
			}
			if sb.ClaimName() != "c1" || sb.SandboxName() != "sb1" || sb.PodName() != "sb1" || sb.PodIP() != wantIP {
				t.Errorf("identity claim=%s sandbox=%s pod=%s ip=%s", sb.ClaimName(), sb.SandboxName(), sb.PodName(), sb.PodIP())
			}
			for _, a := range fc.actions() {
				if a.GetVerb() != "get" {
					t.Errorf("Attach wrote: %v", a)
				}
			}
		})
	}
}

func TestCloseDeletesClaim(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("default", "c1", "sb1"), newSandboxObj("default", "sb1", true, "127.30.0.5"))
	sb, err := fc.client().Attach(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fc.claimExists("default", "c1") {
		t.Error("claim still exists")
	}
	if sb.IsOpen() {
		t.Error("handle still open")
	}
	if _, err := sb.Run(t.Context(), "true"); !errors.Is(err, ErrAlreadyClosed) || !errors.Is(err, ErrNotReady) {
		t.Errorf("Run after Close: %v, want ErrAlreadyClosed and ErrNotReady", err)
	}
	if err := sb.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	deletes := 0
	for _, a := range fc.actions() {
		if a.GetVerb() == "delete" {
			deletes++
		}
	}
	if deletes != 1 {
		t.Errorf("got %d deletes, want 1", deletes)
	}
}

func TestCloseClaimAlreadyGone(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("default", "c1", "sb1"), newSandboxObj("default", "sb1", true))
	sb, err := fc.client().Attach(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.cs.Tracker().Delete(extensionsv1beta1.SandboxClaimsResource, "default", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(t.Context()); err != nil {
		t.Errorf("Close of a deleted claim: %v, want nil (NotFound is success)", err)
	}
}

func TestCloseRetriesAfterFailure(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("default", "c1", "sb1"), newSandboxObj("default", "sb1", true))
	var fail atomic.Bool
	fail.Store(true)
	fc.cs.PrependReactor("delete", "sandboxclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fail.Load() {
			return true, nil, apierrors.NewInternalError(errors.New("etcd down"))
		}
		return false, nil, nil
	})
	sb, err := fc.client(WithCleanupTimeout(time.Second)).Attach(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "sandbox[default/c1]") {
		t.Fatalf("Close: %v, want a prefixed error", err)
	}
	fail.Store(false)
	if err := sb.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fc.claimExists("default", "c1") {
		t.Error("claim still exists")
	}
}

func TestDisconnectKeepsClaim(t *testing.T) {
	fc := newFakeCluster(t, boundClaim("default", "c1", "sb1"), newSandboxObj("default", "sb1", true))
	sb, err := fc.client().Attach(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	sb.Disconnect()
	if !fc.claimExists("default", "c1") {
		t.Error("Disconnect deleted the claim")
	}
	if _, err := sb.Read(t.Context(), "a"); !errors.Is(err, ErrAlreadyClosed) {
		t.Errorf("Read after Disconnect: %v", err)
	}
	for _, a := range fc.actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("Disconnect deleted: %v", a)
		}
	}
}

func TestFormatConditions(t *testing.T) {
	got := formatConditions([]metav1.Condition{
		{Type: "Ready", Status: "False", Reason: "R", Message: "m"},
		{Type: "Finished", Status: "True", Reason: "Done"},
		{Type: "X", Status: "Unknown"},
	})
	want := "Ready=False (R: m), Finished=True (Done), X=Unknown"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPickPodIP(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"fd00::1", "127.30.0.1"}, "127.30.0.1"},
		{[]string{"fd00::1"}, "fd00::1"},
		{[]string{"garbage", "fd00::2"}, "fd00::2"},
	} {
		if got := pickPodIP(tc.in); got != tc.want {
			t.Errorf("pickPodIP(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNewClientValidation(t *testing.T) {
	cs := fake.NewSimpleClientset()
	for name, opts := range map[string][]ClientOption{
		"no transport":                     nil,
		"both transports":                  {WithRouterURL("http://r"), WithDirectPodIP()},
		"control plane only with a router": {WithControlPlaneOnly(), WithRouterURL("http://r")},
		"token in direct":                  {WithDirectPodIP(), WithBearerToken("t")},
		"bad scheme":                       {WithRouterURL("ftp://r")},
		"no host":                          {WithRouterURL("http://")},
		"query in router URL":              {WithRouterURL("http://r/?a=b")},
		"bad port":                         {WithDirectPodIP(), WithServerPort(0)},
		"zero timeout":                     {WithDirectPodIP(), WithPerAttemptTimeout(0)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewClientForClientset(cs, opts...); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error %v: want ErrInvalidArgument", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
