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

package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// ChurnSpec is the load of chaos and soak: claims created at Rate per
// second against Pools chosen at random, each deleted after a random life
// in [MinLife, MaxLife] counted from when the watch shows it Ready, or from
// MaxWait after its create when it never is, until Claims creates have
// succeeded. The run is as long as it takes; the objects alive at once stay
// near Rate × (time to Ready + mean life), at most Rate × (MaxWait +
// MaxLife).
type ChurnSpec struct {
	Claims           int
	Rate             float64
	MinLife, MaxLife time.Duration
	MaxWait          time.Duration
	Pools            []string
	// Seed makes the lives and pool choices of a run repeatable.
	Seed uint64
}

// Validate reports a spec the churn cannot run.
func (s ChurnSpec) Validate() error {
	var errs []error
	if s.Claims <= 0 || s.Rate <= 0 {
		errs = append(errs, errors.New("claims and rate must be positive"))
	}
	if s.MinLife <= 0 || s.MaxLife < s.MinLife || s.MaxWait <= 0 {
		errs = append(errs, errors.New("lives must satisfy 0 < min <= max, and the wait for Ready must be positive"))
	}
	if len(s.Pools) == 0 {
		errs = append(errs, errors.New("at least one pool"))
	}
	return errors.Join(errs...)
}

// churnClaim is one claim of the churn: when its create was sent and how
// it went.
type churnClaim struct {
	name    string
	start   time.Time
	created bool
}

// churn runs a ChurnSpec in one namespace. Claims are created open loop,
// each in its own goroutine, so a slow or absent API server meets the same
// offered load; a failed create is counted and not retried, as a user's
// would not be.
type churn struct {
	env  *Env
	ns   string
	spec ChurnSpec
	rng  *rand.Rand
	// readyAt tells when the watch first showed a claim Ready.
	readyAt func(name string) (time.Time, bool)

	// lives ends at stopLives: claims still alive then are kept for the
	// final checks instead of being deleted.
	lives     context.Context
	stopLives context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex
	claims []churnClaim

	created, createErrors, inflight atomic.Int64
	deleted, deleteErrors           atomic.Int64
}

func newChurn(ctx context.Context, env *Env, ns string, spec ChurnSpec, w *agentWatch) *churn {
	lives, stop := context.WithCancel(ctx)
	return &churn{env: env, ns: ns, spec: spec, rng: rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15)),
		lives: lives, stopLives: stop,
		readyAt: func(name string) (time.Time, bool) {
			at, _, ok := w.readyAt(name)
			return at, ok
		}}
}

// run creates claims at the spec's rate until Claims creates succeeded or
// ctx ends; status is called about once a second for progress.
func (c *churn) run(ctx context.Context, status func(created, errs int64)) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.spec.Rate))
	defer tick.Stop()
	everySecond := max(int(c.spec.Rate), 1)
	for i := 0; ; i++ {
		// A create in flight may still fail, so only successes and
		// pending ones count against the goal.
		if c.created.Load()+c.inflight.Load() >= int64(c.spec.Claims) {
			if c.inflight.Load() == 0 {
				return nil
			}
		} else {
			c.launch(ctx, i)
		}
		if i%everySecond == 0 && status != nil {
			status(c.created.Load(), c.createErrors.Load())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// createTimeout bounds one create or delete request: an API server that
// is restarting may hold a request until it gives up on etcd.
const createTimeout = 30 * time.Second

func (c *churn) launch(ctx context.Context, i int) {
	name := fmt.Sprintf("claim-%06d", i)
	c.mu.Lock()
	pool := c.spec.Pools[c.rng.IntN(len(c.spec.Pools))]
	life := c.spec.MinLife + time.Duration(c.rng.Int64N(int64(c.spec.MaxLife-c.spec.MinLife)+1))
	idx := len(c.claims)
	c.claims = append(c.claims, churnClaim{name: name, start: time.Now()})
	c.mu.Unlock()
	c.inflight.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, createTimeout)
		_, err := c.env.Agents.ExtensionsV1beta1().SandboxClaims(c.ns).Create(rctx, &extv1beta1.SandboxClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: pool}},
		}, metav1.CreateOptions{})
		cancel()
		c.mu.Lock()
		c.claims[idx].start = start
		c.claims[idx].created = err == nil
		c.mu.Unlock()
		if err == nil {
			c.created.Add(1)
		} else {
			c.createErrors.Add(1)
		}
		c.inflight.Add(-1)
		born := c.waitReady(name, start)
		select {
		case <-time.After(time.Until(born.Add(life))):
		case <-c.lives.Done():
			return
		}
		// Deleted even when the create failed: a create cut off by an API
		// server restart may have landed all the same.
		c.delete(ctx, name)
	}()
}

// waitReady returns when the claim's life starts: when the watch first
// showed it Ready, or MaxWait after its create request if that comes
// first (or the create failed). Polling the watch's record costs no API
// call.
func (c *churn) waitReady(name string, start time.Time) time.Time {
	deadline := start.Add(c.spec.MaxWait)
	for time.Now().Before(deadline) {
		if at, ok := c.readyAt(name); ok {
			return at
		}
		select {
		case <-c.lives.Done():
			return time.Now()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return deadline
}

// delete removes a claim, retrying through API server restarts.
func (c *churn) delete(ctx context.Context, name string) {
	for {
		rctx, cancel := context.WithTimeout(ctx, createTimeout)
		err := c.env.Agents.ExtensionsV1beta1().SandboxClaims(c.ns).Delete(rctx, name, metav1.DeleteOptions{})
		cancel()
		switch {
		case err == nil:
			c.deleted.Add(1)
			return
		case apierrors.IsNotFound(err):
			return
		}
		c.deleteErrors.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// finish keeps the claims still alive and waits for every goroutine.
func (c *churn) finish() {
	c.stopLives()
	c.wg.Wait()
}

// samples returns the claims whose create succeeded, by create time.
func (c *churn) samples() []churnClaim {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []churnClaim
	for _, cl := range c.claims {
		if cl.created {
			out = append(out, cl)
		}
	}
	return out
}
