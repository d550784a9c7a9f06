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

package leaderelection

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	clientgoelection "k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/leaderelection"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const (
	leaseName     = "election"
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 250 * time.Millisecond
)

// leaders records who leads, and the most that ever led at once.
type leaders struct {
	mu      sync.Mutex
	current []string
	most    int
	history []string
}

func (l *leaders) lead(ctx context.Context, id string) {
	l.mu.Lock()
	l.current = append(l.current, id)
	l.most = max(l.most, len(l.current))
	l.history = append(l.history, "+"+id)
	l.mu.Unlock()
	<-ctx.Done()
	l.mu.Lock()
	l.current = slices.DeleteFunc(l.current, func(c string) bool { return c == id })
	l.history = append(l.history, "-"+id)
	l.mu.Unlock()
}

func (l *leaders) snapshot() (current []string, most int, history []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.current), l.most, slices.Clone(l.history)
}

// waitLeader waits until exactly one candidate other than not leads.
func (l *leaders) waitLeader(t *testing.T, not string) string {
	t.Helper()
	var leader string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			current, _, _ := l.snapshot()
			if len(current) == 1 && current[0] != not {
				leader = current[0]
				return true, nil
			}
			return false, nil
		})
	if err != nil {
		current, _, history := l.snapshot()
		t.Fatalf("no new leader (not %q): leading %v, history %v", not, current, history)
	}
	return leader
}

// candidate runs pkg/leaderelection on a client whose connection to the
// API server can be cut.
type candidate struct {
	id  string
	cut atomic.Bool
	// lostWhileLeading records, when OnLost ran, whether this candidate's
	// lead function was still running: OnLost must come first.
	lostWhileLeading atomic.Bool
	lostCalled       atomic.Bool
	cancel           context.CancelFunc
	done             chan struct{}
	leading          bool
	err              error
}

func startCandidate(t *testing.T, env *framework.Env, l *leaders, id string) *candidate {
	t.Helper()
	c := &candidate{id: id, done: make(chan struct{})}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return framework.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if c.cut.Load() {
				return nil, errors.New("cut off from the API server")
			}
			return rt.RoundTrip(req)
		})
	}
	kube, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, c.cancel = context.WithCancel(ctx)
	go func() {
		defer close(c.done)
		c.leading, c.err = leaderelection.Run(ctx, leaderelection.Config{
			Leases: kube.CoordinationV1(), Namespace: env.Namespace, Name: leaseName, Identity: id,
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			ReleaseOnCancel: true,
			OnLost: func() {
				c.lostCalled.Store(true)
				current, _, _ := l.snapshot()
				c.lostWhileLeading.Store(slices.Contains(current, id))
			},
		}, func(ctx context.Context) error {
			l.lead(ctx, id)
			return nil
		})
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *candidate) stop() {
	c.cancel()
	<-c.done
}

// Three candidates: one leads; cancelled, it releases the Lease (seen on a
// watch) and another takes over; cut off from the API server, the next
// leader stops leading (ErrLost) before a third starts. Never two at once.
func TestOneLeaderAtATime(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 2*time.Minute)
	l := &leaders{}
	candidates := map[string]*candidate{}
	for _, id := range []string{"a", "b", "c"} {
		candidates[id] = startCandidate(t, env, l, id)
	}
	first := l.waitLeader(t, "")
	lease, err := env.Kube.CoordinationV1().Leases(env.Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(lease.Spec.HolderIdentity, ""); got != first {
		t.Fatalf("lease held by %q while %q leads", got, first)
	}

	// Release on cancel: the Lease is written free, not left to expire.
	w, err := env.Kube.CoordinationV1().Leases(env.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + leaseName, ResourceVersion: lease.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	candidates[first].stop()
	if c := candidates[first]; !c.leading || c.err != nil {
		t.Fatalf("cancelled leader returned leading=%t, %v; want true, nil", c.leading, c.err)
	}
	released := false
	for ev := range w.ResultChan() {
		if ev.Type != watch.Modified {
			continue
		}
		held := ptr.Deref(ev.Object.(*coordinationv1.Lease).Spec.HolderIdentity, "")
		if held == "" {
			released = true
			break
		}
		if held != first {
			break
		}
	}
	if !released {
		t.Fatal("the cancelled leader did not write the lease free before another took it")
	}
	second := l.waitLeader(t, first)

	// Cut off: the leader cannot renew and must stop within the renew
	// deadline, before the lease duration lets another take over.
	candidates[second].cut.Store(true)
	select {
	case <-candidates[second].done:
	case <-ctx.Done():
		t.Fatal("the leader cut off from the API server never stopped")
	}
	if c := candidates[second]; !c.leading || !errors.Is(c.err, leaderelection.ErrLost) {
		t.Fatalf("cut-off leader returned leading=%t, %v; want true, ErrLost", c.leading, c.err)
	}
	if c := candidates[second]; !c.lostCalled.Load() || !c.lostWhileLeading.Load() {
		t.Fatalf("OnLost called %t, before lead returned %t; want both (a process exits there, work in flight included)",
			c.lostCalled.Load(), c.lostWhileLeading.Load())
	}
	for id, c := range candidates {
		if id != second && c.lostCalled.Load() {
			t.Errorf("OnLost called for %q, which released or still leads", id)
		}
	}
	third := l.waitLeader(t, second)
	if third == first {
		t.Fatalf("the released candidate %q led again; it had stopped", first)
	}
	if _, most, history := l.snapshot(); most != 1 {
		t.Fatalf("%d candidates led at once; history %v", most, history)
	}
}

// startClientGo runs client-go's leaderelection, as a replica of an older
// release does, on the same Lease.
func startClientGo(t *testing.T, env *framework.Env, l *leaders, id string) (stop func()) {
	t.Helper()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, env.Namespace, leaseName,
		env.Kube.CoreV1(), env.Kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		clientgoelection.RunOrDie(ctx, clientgoelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			ReleaseOnCancel: true, Name: id,
			Callbacks: clientgoelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) { l.lead(ctx, id) },
				OnStoppedLeading: func() {},
			},
		})
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// assertStillLeads checks for two lease durations that leader alone leads
// while another candidate tries.
func assertStillLeads(t *testing.T, l *leaders, leader string) {
	t.Helper()
	deadline := time.Now().Add(2 * leaseDuration)
	for time.Now().Before(deadline) {
		if current, _, history := l.snapshot(); len(current) != 1 || current[0] != leader {
			t.Fatalf("want %q alone leading, have %v; history %v", leader, current, history)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// During a rolling upgrade replicas of an older release (client-go's
// leaderelection) and of this one share the Lease: neither takes it from
// the other while it is renewed, and each takes it at once when the other
// releases it.
func TestTakesTurnsWithClientGo(t *testing.T) {
	env := framework.Setup(t)
	l := &leaders{}
	stopOld := startClientGo(t, env, l, "old-release")
	l.waitLeader(t, "")
	ours := startCandidate(t, env, l, "this-release")
	assertStillLeads(t, l, "old-release")

	stopOld()
	if got := l.waitLeader(t, "old-release"); got != "this-release" {
		t.Fatalf("after client-go released, %q leads; want this-release", got)
	}
	startClientGo(t, env, l, "old-release-2")
	assertStillLeads(t, l, "this-release")

	ours.stop()
	if got := l.waitLeader(t, "this-release"); got != "old-release-2" {
		t.Fatalf("after this release's candidate released, %q leads; want old-release-2", got)
	}
	if _, most, history := l.snapshot(); most != 1 {
		t.Fatalf("%d candidates led at once; history %v", most, history)
	}
	lease, err := env.Kube.CoordinationV1().Leases(env.Namespace).Get(context.Background(), leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(lease.Spec.LeaseTransitions, 0); got < 2 {
		t.Errorf("leaseTransitions %d after three holders; want at least 2", got)
	}
}

// A leader that finds another holder on record (an operator's edit) stops
// leading and never writes over that record: its renewal from the Lease
// it last wrote is refused by the resourceVersion precondition, and the
// read that follows names the other holder.
func TestAnotherHolderOnRecordStopsTheLeader(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	l := &leaders{}
	c := startCandidate(t, env, l, "a")
	if got := l.waitLeader(t, ""); got != "a" {
		t.Fatalf("leader %q, want a", got)
	}
	leases := env.Kube.CoordinationV1().Leases(env.Namespace)
	lease, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lease.Spec.HolderIdentity = ptr.To("operator")
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		t.Fatal("the leader went on leading after the lease named another holder")
	}
	if !c.leading || !errors.Is(c.err, leaderelection.ErrLost) || !c.lostCalled.Load() {
		t.Fatalf("leader returned leading=%t, %v, OnLost called %t; want true, ErrLost, true", c.leading, c.err, c.lostCalled.Load())
	}
	lease, err = leases.Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(lease.Spec.HolderIdentity, ""); got != "operator" {
		t.Fatalf("holder %q after the leader stopped; want the operator's record kept", got)
	}
}
