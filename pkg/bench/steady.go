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
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// SteadyResult is claims at a fixed rate against a pool.
type SteadyResult struct {
	Rate            float64     `json:"rate"`
	DurationSeconds float64     `json:"durationSeconds"`
	PoolFill        *FillResult `json:"poolFill"`
	ClaimStats
	// AchievedRate is created claims over the seconds it took to send
	// them; below Rate means the bench itself could not keep up.
	AchievedRate float64 `json:"achievedRate"`
	// Buckets are the latencies by the second their create started.
	Buckets []Bucket `json:"buckets"`
	CDF     []Point  `json:"cdf"`
	// LoadedRTT is the rtt (a ConfigMap create to its ADDED event) timed
	// every loadedRTTInterval while the claims were sent: the yardstick
	// under the run's own load, where the rtt scenario's is idle.
	LoadedRTT *Summary `json:"loadedRtt,omitempty"`
	// TeardownSeconds runs from deleting the claims until none of their
	// Sandboxes is left.
	TeardownSeconds float64 `json:"teardownSeconds"`
}

// Steady fills a pool of poolSize and then creates claims at rate per
// second for d, on a ticker that never waits for a claim to become Ready
// (open loop: a slow controller meets the same load, and its latencies
// grow). Afterwards every claim is deleted and the pool must be left with
// nothing but its members.
func (e *Env) Steady(ctx context.Context, rate float64, d time.Duration, poolSize int) (*SteadyResult, error) {
	return e.steadyScenario(ctx, "steady", rate, d, poolSize, 0)
}

// SteadyWarmEnv is Steady where every other claim sets two literal env
// variables (issue 17 part 1): the pool's template opts in to warm env,
// so both kinds should be served warm at the same latency and writes. The
// result's EnvSplit puts the two side by side.
func (e *Env) SteadyWarmEnv(ctx context.Context, rate float64, d time.Duration, poolSize int) (*SteadyResult, error) {
	return e.steadyScenario(ctx, "warm-env", rate, d, poolSize, 2)
}

// steadyScenario fills a pool in a namespace of its own and runs one
// steadyRun against it.
func (e *Env) steadyScenario(ctx context.Context, name string, rate float64, d time.Duration, poolSize, envEvery int) (*SteadyResult, error) {
	e.Progress.Scenario(fmt.Sprintf("%s-%g", name, rate))
	ns, w, fill, done, err := e.poolScenario(ctx, strings.ReplaceAll(name, "-", ""), poolSize, true)
	defer done()
	if err != nil {
		return nil, err
	}
	e.Progress.Logf("pool of %d Ready in %.2fs", poolSize, fill.FillSeconds)
	return e.steadyRun(ctx, ns, w, fill, rate, d, "", 0, envEvery)
}

// steadyRun is one run of claims at rate for d against the filled pool
// of ns: the claims are named claim-<prefix><n>, followed to Ready, the
// pool to its refill, and then deleted, with the exactly-once checks at
// every event and on the settled state before and after the teardown.
// The run's violations are those the checker recorded from index
// violationsFrom on (a ramp's earlier steps share the checker). With
// envEvery > 0, every envEvery-th claim carries env (SteadyWarmEnv).
func (e *Env) steadyRun(ctx context.Context, ns string, w *agentWatch, fill *FillResult, rate float64, d time.Duration, prefix string, violationsFrom,
	envEvery int) (*SteadyResult, error) {
	total := int(rate * d.Seconds())
	e.Progress.Logf("%d claims at %g/s for %s against a pool of %d", total, rate, d, fill.Size)

	var writes writeCounter
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	l := &claimLauncher{env: e, ns: ns, writes: &writes}
	stopProbe, err := e.probeUnderLoad(ctx, ns, prefix, &writes)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	for i := 0; i < total; i++ {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				tick.Stop()
				stopProbe()
				return nil, ctx.Err()
			}
		}
		l.launch(ctx, fmt.Sprintf("claim-%s%05d", prefix, i), envEvery > 0 && i%envEvery == envEvery-1)
		if i%int(max(rate, 1)) == 0 {
			e.Progress.Status("sent %d/%d claims, %d Ready", i+1, total, w.readyOf(l.createdNames()))
		}
	}
	tick.Stop()
	sent := time.Since(start)
	loadedRTT := stopProbe()
	e.Progress.Done()
	st, err := e.finishClaims(ctx, ns, w, l, win, fill, start)
	if err != nil {
		return nil, err
	}
	r := &SteadyResult{Rate: rate, DurationSeconds: d.Seconds(), PoolFill: fill, ClaimStats: *st, LoadedRTT: loadedRTT}
	if sent > 0 && total > 1 {
		// total creates span total-1 ticks.
		r.AchievedRate = round3(float64(total-1) / sent.Seconds())
	}
	var timed []Timed
	for _, s := range st.samples {
		if s.ready {
			timed = append(timed, Timed{At: s.start.Sub(start), Latency: s.latency})
		}
	}
	r.Buckets = PerSecond(timed)
	all, _, _ := st.latencyValues()
	r.CDF = CDF(all)
	e.Progress.Logf("%g/s: %d claims, p50 %.1fms p99 %.1fms max %.1fms, %d cold, %d not Ready",
		rate, st.Created, st.Latency.P50Ms, st.Latency.P99Ms, st.Latency.MaxMs, st.cold(), st.NotReady)
	if sp := st.EnvSplit; sp != nil {
		e.Progress.Logf("%g/s: warm p50/p99 plain %.1f/%.1fms, with env %.1f/%.1fms", rate,
			sp.Plain.WarmLatency.P50Ms, sp.Plain.WarmLatency.P99Ms, sp.Env.WarmLatency.P50Ms, sp.Env.WarmLatency.P99Ms)
	}

	teardown, err := e.deleteClaims(ctx, ns, w)
	if err != nil {
		e.Progress.Logf("%v", err)
	}
	r.TeardownSeconds = round3(teardown.Seconds())
	r.Violations = w.checker.Violations()[violationsFrom:]
	e.Progress.Logf("%g/s: teardown %.1fs, %d violations", rate, r.TeardownSeconds, len(r.Violations))
	return r, nil
}

// cold counts the run's cold claims: Ready on a Sandbox made for them,
// or Sandboxes created for claims (one never seen Ready counts too).
func (st *ClaimStats) cold() int { return max(st.ColdLatency.N, st.ColdCreated) }

// deleteClaims deletes every claim and waits until the watch shows no
// Sandbox controlled by a claim, then checks that what is left belongs to
// the pool: a Sandbox that outlives its claim is a leak.
func (e *Env) deleteClaims(ctx context.Context, ns string, w *agentWatch) (time.Duration, error) {
	start := time.Now()
	if err := e.Agents.ExtensionsV1beta1().SandboxClaims(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return 0, fmt.Errorf("deleting claims: %w", err)
	}
	err := e.waitUntil(ctx, "the claims' sandboxes to be deleted", func() (bool, string) {
		n := w.checker.Controlled(extv1beta1.SandboxClaimKind)
		return n == 0, fmt.Sprintf("%d left", n)
	})
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	// The claims themselves go at once; poll until the List agrees.
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		cls, err := e.Agents.ExtensionsV1beta1().SandboxClaims(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(cls.Items) == 0, nil
	})
	return took, e.finalCheck(ctx, ns, w)
}
