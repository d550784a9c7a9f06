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
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
)

// newLeases is a fake clientset holding leases that, like the API server
// and unlike the generated fake, gives every write a new resourceVersion
// and refuses an update whose resourceVersion is not the current one: the
// elector's safety rests on that precondition.
func newLeases(leases ...*coordinationv1.Lease) *fake.Clientset {
	kube := fake.NewSimpleClientset()
	tracker := kube.Tracker()
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	var mu sync.Mutex
	revision := 0
	stamp := func(l *coordinationv1.Lease) *coordinationv1.Lease {
		revision++
		l = l.DeepCopy()
		l.ResourceVersion = strconv.Itoa(revision)
		return l
	}
	for _, l := range leases {
		if err := tracker.Add(stamp(l)); err != nil {
			panic(err)
		}
	}
	kube.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		l := stamp(a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease))
		if err := tracker.Create(gvr, l, l.Namespace); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	kube.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		current, err := tracker.Get(gvr, l.Namespace, l.Name)
		if err != nil {
			return true, nil, err
		}
		if rv := current.(*coordinationv1.Lease).ResourceVersion; l.ResourceVersion != rv {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, l.Name,
				fmt.Errorf("resourceVersion %q is not the current %q", l.ResourceVersion, rv))
		}
		l = stamp(l)
		if err := tracker.Update(gvr, l, l.Namespace); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	return kube
}

func newElector(kube *fake.Clientset, clk *clocktesting.FakeClock, identity string) *elector {
	return &elector{logger: klog.Background(), cfg: Config{
		Leases: kube.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: identity,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, Clock: clk,
	}}
}

// holding is a fresh Lease that identity has just acquired.
func holding(t *testing.T, identity string) (*fake.Clientset, *clocktesting.FakeClock, *elector) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	kube := newLeases()
	e := newElector(kube, clk, identity)
	if !e.tryAcquireOrRenew(context.Background()) {
		t.Fatal("no lease acquired when none exists")
	}
	return kube, clk, e
}

func getLease(t *testing.T, kube *fake.Clientset) *coordinationv1.Lease {
	t.Helper()
	l, err := kube.CoordinationV1().Leases("ns").Get(context.Background(), "lease", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Another replica's record counts as held for LeaseDuration from when this
// process first saw it, by this process's clock: a holder whose clock is
// an hour behind (its renewTime long past) is not taken over early, and a
// holder that stopped renewing is taken over once that time has passed.
func TestExpiryByObservationNotRenewTime(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	skewed := metav1.NewMicroTime(clk.Now().Add(-time.Hour))
	kube := newLeases(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "lease", Namespace: "ns"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &skewed, RenewTime: &skewed, LeaseTransitions: ptr.To[int32](3)},
	})
	e := newElector(kube, clk, "me")
	if e.tryAcquireOrRenew(ctx) {
		t.Fatal("took a lease whose holder's renewal was just seen")
	}
	clk.Step(14 * time.Second)
	if e.tryAcquireOrRenew(ctx) {
		t.Fatal("took the lease 14 s after seeing its record (lease duration 15 s)")
	}
	clk.Step(2 * time.Second)
	if !e.tryAcquireOrRenew(ctx) {
		t.Fatal("did not take a lease unrenewed for 16 s")
	}
	l := getLease(t, kube)
	if got := ptr.Deref(l.Spec.HolderIdentity, ""); got != "me" {
		t.Errorf("holder %q, want me", got)
	}
	if got := ptr.Deref(l.Spec.LeaseTransitions, 0); got != 4 {
		t.Errorf("transitions %d, want 4 (one more on a new holder)", got)
	}
	if !l.Spec.AcquireTime.Time.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Errorf("acquireTime %v, want now %v", l.Spec.AcquireTime, clk.Now())
	}
}

// A holder that keeps renewing is never taken over, however long the
// other candidate waits; the holder's renewals keep its acquireTime and
// transitions.
func TestRenewalsKeepTheLease(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	kube := newLeases()
	holder, other := newElector(kube, clk, "holder"), newElector(kube, clk, "other")
	if !holder.tryAcquireOrRenew(ctx) {
		t.Fatal("no lease acquired when none exists")
	}
	acquired := getLease(t, kube).Spec.AcquireTime
	for range 20 {
		clk.Step(2 * time.Second)
		if !holder.tryAcquireOrRenew(ctx) {
			t.Fatal("holder could not renew")
		}
		if other.tryAcquireOrRenew(ctx) {
			t.Fatal("other took a lease renewed 2 s before")
		}
	}
	l := getLease(t, kube)
	if !l.Spec.AcquireTime.Equal(acquired) || ptr.Deref(l.Spec.LeaseTransitions, -1) != 0 {
		t.Errorf("after renewals: acquireTime %v (want %v), transitions %d (want 0)",
			l.Spec.AcquireTime, acquired, ptr.Deref(l.Spec.LeaseTransitions, -1))
	}
	if !l.Spec.RenewTime.Time.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Errorf("renewTime %v, want the last renewal %v", l.Spec.RenewTime, clk.Now())
	}
}

// A holder that finds another holder on record stops at once (ErrLost on
// its next attempt), not when the renew deadline has passed.
func TestAnotherHolderOnRecordEndsLeadership(t *testing.T) {
	ctx := context.Background()
	kube, clk, e := holding(t, "me")
	lost := make(chan bool, 1)
	go func() { lost <- e.renew(ctx, make(chan struct{})) }()

	taken := getLease(t, kube)
	taken.Spec.HolderIdentity = ptr.To("someone-else")
	if _, err := kube.CoordinationV1().Leases("ns").Update(ctx, taken, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(e.cfg.RetryPeriod)
	select {
	case l := <-lost:
		if !l {
			t.Fatal("renew ended without reporting the loss")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("renew went on after the lease named another holder")
	}
	if got := ptr.Deref(getLease(t, kube).Spec.HolderIdentity, ""); got != "someone-else" {
		t.Errorf("holder %q after the loss: the renewal overwrote another holder's record", got)
	}
}

// A holder renews with one write from the Lease it last wrote, no read:
// at a renewal every 2 s a read each time would double the elector's
// requests.
func TestRenewalIsOneWrite(t *testing.T) {
	ctx := context.Background()
	kube, clk, e := holding(t, "me")
	kube.ClearActions()
	for range 5 {
		clk.Step(2 * time.Second)
		if !e.tryAcquireOrRenew(ctx) {
			t.Fatal("holder could not renew")
		}
	}
	var verbs []string
	for _, a := range kube.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	if want := []string{"update", "update", "update", "update", "update"}; !slices.Equal(verbs, want) {
		t.Errorf("five renewals made requests %v, want %v", verbs, want)
	}
	if !getLease(t, kube).Spec.RenewTime.Time.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Error("the last renewal was not written")
	}
}

// When the write from the last Lease is refused although this process is
// still the holder on record (its previous renewal landed but the answer
// was lost), the renewal reads the Lease and succeeds in the same attempt.
func TestRenewalAfterAnUnansweredWrite(t *testing.T) {
	ctx := context.Background()
	kube, clk, e := holding(t, "me")
	landed := getLease(t, kube)
	landed.Spec.RenewTime = ptr.To(metav1.NewMicroTime(clk.Now().Add(time.Second)))
	if _, err := kube.CoordinationV1().Leases("ns").Update(ctx, landed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	if !e.tryAcquireOrRenew(ctx) {
		t.Fatal("a holder still on record could not renew after a refused write")
	}
	if !getLease(t, kube).Spec.RenewTime.Time.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Error("the renewal was not written")
	}
}

func TestValidateRefusesUnsafeTimings(t *testing.T) {
	kube := fake.NewSimpleClientset()
	base := Config{Leases: kube.CoordinationV1(), Namespace: "ns", Name: "l", Identity: "me",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	if err := base.Validate(); err != nil {
		t.Fatalf("default timings refused: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"renew deadline not below lease duration": func(c *Config) { c.RenewDeadline = c.LeaseDuration },
		"retry period not below renew deadline":   func(c *Config) { c.RetryPeriod = c.RenewDeadline },
		"no retry period":                         func(c *Config) { c.RetryPeriod = 0 },
		"no identity":                             func(c *Config) { c.Identity = "" },
	} {
		c := base
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
