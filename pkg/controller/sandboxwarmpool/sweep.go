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
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// memberSweepInterval is how often the state kept per member (provenance,
// template verdicts, refusals reported) is checked against the Sandbox
// cache. Those entries are keyed by another object's UID and normally go
// with its delete event; the sweep is the expiry for the ones whose event
// was missed or raced, so an entry outlives its Sandbox by at most two
// intervals. A sweep reads the whole Sandbox cache once.
const memberSweepInterval = 10 * time.Minute

// sweepEvery sweeps on a ticker of the controller's clock until ctx ends.
func (c *Controller) sweepEvery(ctx context.Context, interval time.Duration) {
	t := c.opts.Clock.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			c.sweepMembers(ctx)
		}
	}
}

// sweepMembers expires the per-member state of Sandboxes that are gone
// from the cache or no longer controlled by a pool (what the delete and
// update handlers forget). Before the caches have synced nothing is
// swept: an absent Sandbox may just not be listed yet.
func (c *Controller) sweepMembers(ctx context.Context) {
	for _, synced := range c.synced {
		if !synced() {
			return
		}
	}
	live := map[types.UID]struct{}{}
	for _, o := range c.memberIndexer.List() {
		if _, ok := poolKey(o); ok {
			live[o.(metav1.Object).GetUID()] = struct{}{}
		}
	}
	isLive := func(uid types.UID) bool { _, ok := live[uid]; return ok }
	provenance := c.opts.Provenance.Sweep(isLive)
	matches := c.matches.Sweep(isLive)
	c.mu.Lock()
	refused := controller.Sweep(&c.refusedSweep, c.refused, isLive)
	c.mu.Unlock()
	if provenance+matches+refused > 0 {
		klog.FromContext(ctx).V(2).Info("Expired the state of members gone unseen",
			"provenance", provenance, "templateVerdicts", matches, "refusals", refused)
	}
}
