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
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// statusWriteInterval is how often, at most, a pool's status reports
// progress in between. Under a steady stream of claims every claim changes
// the counts three times (taken, replacement created, replacement Ready);
// measured at 10 claims/s that was three status writes per claim.
const statusWriteInterval = time.Second

// statusPacer spaces out a pool's status writes. What clients wait for is
// never held back: a new generation (kubectl scale, then wait for
// observedGeneration), a pool that reached its target (all Ready), and the
// first write. Progress in between is written at most once an interval;
// the pass that is held requeues for the interval's end, so the last
// counts always land.
type statusPacer struct {
	spacing
}

func newStatusPacer(interval time.Duration) *statusPacer {
	return &statusPacer{spacing: newSpacing(interval)}
}

// wait returns how long to hold the write of status, or zero to write now.
func (p *statusPacer) wait(key string, pool *extv1beta1.SandboxWarmPool, status extv1beta1.SandboxWarmPoolStatus, desired int, now time.Time) time.Duration {
	if p.interval <= 0 || equality.Semantic.DeepEqual(pool.Status, status) {
		return 0
	}
	settled := int(status.Replicas) == desired && int(status.ReadyReplicas) == desired
	if settled || status.ObservedGeneration != pool.Status.ObservedGeneration {
		return 0
	}
	return p.remaining(key, now)
}

func (p *statusPacer) wrote(key string, now time.Time) { p.mark(key, now) }
