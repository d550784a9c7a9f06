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

// Package leaderelection runs a function while this process holds a
// coordination.k8s.io Lease, so one controller replica acts at a time.
//
// It writes the Lease as client-go's leaderelection does (holderIdentity,
// leaseDurationSeconds, acquireTime, renewTime, leaseTransitions), so
// replicas of older releases and of this one take turns on the same Lease
// during a rolling upgrade. It exists because client-go's package reaches
// its Lease client through k8s.io/client-go/kubernetes/scheme, which links
// every built-in API group into the controller (see package clients).
//
// Expiry is judged by this process's clock from when it last saw the
// record change, never by comparing renewTime with the local clock, so
// clock skew between replicas cannot hand the Lease to two of them.
package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	coordinationclient "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/coordination/v1"
)

// Config names the Lease, this candidate and the timing.
type Config struct {
	Leases    coordinationclient.LeasesGetter
	Namespace string
	Name      string
	// Identity is written as the holder; unique per process.
	Identity string

	// LeaseDuration is how long others wait after the holder's last
	// renewal before taking the Lease; RenewDeadline how long the holder
	// keeps trying to renew before it stops leading (shorter than
	// LeaseDuration, so it stops before another may start); RetryPeriod
	// the time between attempts.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration

	// ReleaseOnCancel gives the Lease up when ctx ends, so another
	// replica takes over at once instead of after LeaseDuration. Only
	// safe when the lead function has returned by then: Run waits for it.
	ReleaseOnCancel bool

	// OnLost, when set, is called the moment leadership is lost, before
	// lead's context is cancelled and waited for: a process that must not
	// act once another replica may lead exits here, without waiting for
	// work in flight (client-go's OnStoppedLeading does the same).
	OnLost func()

	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
}

// Validate refuses timings with which two replicas could lead at once.
func (c *Config) Validate() error {
	switch {
	case c.Leases == nil || c.Name == "" || c.Namespace == "" || c.Identity == "":
		return errors.New("leader election needs a Lease client, namespace, name and identity")
	case c.RetryPeriod <= 0:
		return errors.New("leader election retry period must be positive")
	case c.RenewDeadline <= c.RetryPeriod:
		return fmt.Errorf("leader election renew deadline %v must exceed the retry period %v", c.RenewDeadline, c.RetryPeriod)
	case c.LeaseDuration <= c.RenewDeadline:
		return fmt.Errorf("leader election lease duration %v must exceed the renew deadline %v", c.LeaseDuration, c.RenewDeadline)
	}
	return nil
}

// Run blocks until ctx ends, leadership is lost or lead returns. Once this
// process holds the Lease it calls lead with a context that is cancelled
// when leadership ends, keeps renewing while lead runs, and returns lead's
// error after lead has returned; a lost Lease adds ErrLost. leading
// reports whether this process ever led.
func Run(ctx context.Context, cfg Config, lead func(context.Context) error) (leading bool, err error) {
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	e := &elector{cfg: cfg, logger: klog.FromContext(ctx).WithValues("lease", klog.KRef(cfg.Namespace, cfg.Name))}
	if !e.acquire(ctx) {
		return false, nil
	}
	leadCtx, stop := context.WithCancel(ctx)
	defer stop()
	finished := make(chan struct{})
	var leadErr error
	go func() {
		defer close(finished)
		leadErr = lead(leadCtx)
	}()

	lost := e.renew(leadCtx, finished)
	if lost && cfg.OnLost != nil {
		cfg.OnLost()
	}
	stop()
	<-finished
	if lost {
		return true, errors.Join(ErrLost, leadErr)
	}
	if cfg.ReleaseOnCancel {
		e.release()
	}
	return true, leadErr
}

// ErrLost is returned when the Lease could not be renewed in time.
var ErrLost = errors.New("leader election lost")

type elector struct {
	cfg    Config
	logger klog.Logger

	// lease is the last Lease read or written: the base of the next
	// update. observedAt is when this process first saw its record
	// (holder and renewTime) as it is, by this process's clock.
	lease      *coordinationv1.Lease
	observedAt time.Time
}

// acquire tries every RetryPeriod (with jitter, so replicas do not
// collide) until it holds the Lease or ctx ends.
func (e *elector) acquire(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			e.logger.Info("Acquired the lease", "identity", e.cfg.Identity)
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-e.cfg.Clock.After(wait.Jitter(e.cfg.RetryPeriod, 1.2)):
		}
	}
}

// renew keeps the Lease until ctx ends or lead has finished (false), or
// until no renewal succeeds within RenewDeadline of the last or the Lease
// names another holder (true: lost). Each attempt's requests end at that
// deadline.
func (e *elector) renew(ctx context.Context, finished <-chan struct{}) bool {
	ticker := e.cfg.Clock.NewTicker(e.cfg.RetryPeriod)
	defer ticker.Stop()
	lastRenew := e.cfg.Clock.Now()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-finished:
			return false
		case <-ticker.C():
		}
		attemptCtx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline-e.cfg.Clock.Since(lastRenew))
		ok := e.tryAcquireOrRenew(attemptCtx)
		cancel()
		if ok {
			lastRenew = e.cfg.Clock.Now()
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		if holder := ptr.Deref(e.lease.Spec.HolderIdentity, ""); holder != "" && holder != e.cfg.Identity {
			// Another holder is on record (an admin's edit, or a clock
			// far slower than the others'): stop now, not at the deadline.
			e.logger.Info("The lease has another holder; leadership lost", "holder", holder)
			return true
		}
		if e.cfg.Clock.Since(lastRenew) >= e.cfg.RenewDeadline {
			e.logger.Info("No lease renewal within the deadline; leadership lost", "renewDeadline", e.cfg.RenewDeadline)
			return true
		}
	}
}

// tryAcquireOrRenew reads the Lease and writes this process as its holder
// when it is free, expired or already ours, with the resourceVersion read
// as a precondition, so of two candidates at most one succeeds. A holder
// renews from the Lease it last wrote, without reading it first (one
// request per renewal, as client-go's elector does); when that write is
// refused, someone else wrote the Lease since, and the read below decides.
func (e *elector) tryAcquireOrRenew(ctx context.Context) bool {
	leases := e.cfg.Leases.Leases(e.cfg.Namespace)
	now := e.cfg.Clock.Now()
	if e.lease != nil && ptr.Deref(e.lease.Spec.HolderIdentity, "") == e.cfg.Identity {
		err := e.writeHolder(ctx, e.lease, now)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		e.logger.V(2).Info("Renewing the lease from the last write failed; reading it", "err", err)
	}
	current, err := leases.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		created, err := leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Name, Namespace: e.cfg.Namespace},
			Spec:       e.spec(nil, now),
		}, metav1.CreateOptions{})
		if err != nil {
			e.logger.V(2).Info("Creating the lease failed", "err", err)
			return false
		}
		e.observe(created, now)
		return true
	}
	if err != nil {
		e.logger.V(2).Info("Reading the lease failed", "err", err)
		return false
	}
	e.observe(current, now)
	holder := ptr.Deref(current.Spec.HolderIdentity, "")
	if holder != "" && holder != e.cfg.Identity && now.Before(e.observedAt.Add(e.leaseDuration(current))) {
		e.logger.V(4).Info("Lease held by another", "holder", holder)
		return false
	}
	if err := e.writeHolder(ctx, current, now); err != nil {
		e.logger.V(2).Info("Writing the lease failed", "err", err)
		return false
	}
	return true
}

// writeHolder updates base (its resourceVersion is the precondition) to
// name this process as the holder, and remembers what was written.
func (e *elector) writeHolder(ctx context.Context, base *coordinationv1.Lease, now time.Time) error {
	update := base.DeepCopy()
	update.Spec = e.spec(base, now)
	updated, err := e.cfg.Leases.Leases(e.cfg.Namespace).Update(ctx, update, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	e.observe(updated, now)
	return nil
}

// leaseDuration is the holder's own promise, as client-go reads it; ours
// when the record has none.
func (e *elector) leaseDuration(l *coordinationv1.Lease) time.Duration {
	if s := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); s > 0 {
		return time.Duration(s) * time.Second
	}
	return e.cfg.LeaseDuration
}

// spec is the record that makes this process the holder of current (nil:
// a new Lease): the acquire time and transitions carry over while the
// holder stays the same.
func (e *elector) spec(current *coordinationv1.Lease, now time.Time) coordinationv1.LeaseSpec {
	t := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(e.cfg.Identity),
		LeaseDurationSeconds: ptr.To(int32(e.cfg.LeaseDuration / time.Second)),
		AcquireTime:          &t,
		RenewTime:            &t,
		LeaseTransitions:     ptr.To[int32](0),
	}
	if current == nil {
		return spec
	}
	transitions := ptr.Deref(current.Spec.LeaseTransitions, 0)
	if ptr.Deref(current.Spec.HolderIdentity, "") == e.cfg.Identity {
		spec.AcquireTime = current.Spec.AcquireTime
	} else {
		transitions++
	}
	spec.LeaseTransitions = &transitions
	// Fields this elector does not manage (strategy, preferred holder)
	// stay as they are.
	spec.Strategy = current.Spec.Strategy
	spec.PreferredHolder = current.Spec.PreferredHolder
	return spec
}

// observe remembers l, and the time its record was first seen as it is.
func (e *elector) observe(l *coordinationv1.Lease, now time.Time) {
	if e.lease == nil || !sameRecord(e.lease.Spec, l.Spec) {
		e.observedAt = now
	}
	e.lease = l
}

func sameRecord(a, b coordinationv1.LeaseSpec) bool {
	return ptr.Deref(a.HolderIdentity, "") == ptr.Deref(b.HolderIdentity, "") &&
		ptr.Deref(a.LeaseDurationSeconds, 0) == ptr.Deref(b.LeaseDurationSeconds, 0) &&
		a.RenewTime.Equal(b.RenewTime)
}

// release writes the Lease as free (an empty holder, 1 s, as client-go
// does), so another replica takes it on its next attempt. Called after
// lead returned, with its own short deadline: ctx has ended by then. It
// reads the Lease first: a renewal cut short by the cancel may still have
// been written, which would make the last resourceVersion seen stale.
func (e *elector) release() {
	if e.lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RetryPeriod)
	defer cancel()
	leases := e.cfg.Leases.Leases(e.cfg.Namespace)
	current, err := leases.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if err != nil {
		e.logger.Error(err, "Releasing the lease failed; another replica takes it when it expires")
		return
	}
	if ptr.Deref(current.Spec.HolderIdentity, "") != e.cfg.Identity {
		return
	}
	now := metav1.NewMicroTime(e.cfg.Clock.Now())
	update := current.DeepCopy()
	update.Spec.HolderIdentity = ptr.To("")
	update.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	update.Spec.AcquireTime = &now
	update.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, update, metav1.UpdateOptions{}); err != nil {
		e.logger.Error(err, "Releasing the lease failed; another replica takes it when it expires")
		return
	}
	e.logger.Info("Released the lease")
}
