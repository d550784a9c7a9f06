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
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// ClaimStats is what a run of claims against a pool measured; the burst
// and the steady scenario share it.
type ClaimStats struct {
	Pool    int `json:"pool"`
	Claims  int `json:"claims"`
	Created int `json:"created"`
	// CreateErrors are create requests the apiserver refused.
	CreateErrors int `json:"createErrors"`
	// NotReady are created claims never seen Ready within the timeout.
	NotReady int `json:"notReady"`
	// Latency runs from a claim's create request to its Ready=True on a
	// watch. Warm claims got a pool member (launch-type warm, or a Sandbox
	// the pool controlled before); cold ones a Sandbox made for them.
	Latency     Summary `json:"latency"`
	WarmLatency Summary `json:"warmLatency"`
	ColdLatency Summary `json:"coldLatency"`
	// AllReadySeconds runs from the first create to the last claim Ready.
	AllReadySeconds float64 `json:"allReadySeconds"`
	// RefillSeconds runs from the first create until the pool was whole
	// again (its size in Ready members and in status).
	RefillSeconds float64 `json:"refillSeconds"`
	// RefillTimedOut says the pool was not whole again within the timeout.
	RefillTimedOut bool `json:"refillTimedOut,omitempty"`
	// RefillCreated and ColdCreated count the Sandboxes the pool created
	// as refill and the claims created cold during the run.
	RefillCreated int `json:"refillCreated"`
	ColdCreated   int `json:"coldCreated"`
	// PoolLowest is the fewest Ready members the pool had, and
	// PoolEmptySeconds how long it had none, from the first create until
	// it was whole again: how close the refill came to letting claims go
	// cold, which a run's cold count shows only once it is too late.
	PoolLowest       int     `json:"poolLowest"`
	PoolEmptySeconds float64 `json:"poolEmptySeconds"`
	// ClaimPathCost is the first create until all claims Ready (refill
	// partly included: it starts with the first taken member);
	// TotalCost runs until the pool is whole again.
	ClaimPathCost Cost `json:"claimPathCost"`
	TotalCost     Cost `json:"totalCost"`
	// WritesPerClaim are controller writes per claim including the refill.
	WritesPerClaim float64 `json:"writesPerClaim"`
	// WritesPerClaimPath excludes the refill: total writes minus the
	// refilled members at the fill's writes per member, per claim; an
	// estimate, as both run at once.
	WritesPerClaimPath float64 `json:"writesPerClaimPath"`
	WritesMeasured     bool    `json:"writesMeasured"`
	// CriticalPath counts, per warm claim, the writes on its own objects
	// between its create and its Ready (CriticalPathDefinition): exact,
	// where WritesPerClaimPath is an estimate from totals. Nil when not
	// measured.
	CriticalPath *CriticalPath `json:"criticalPath,omitempty"`
	// ControllerCPUMsPerClaim is the controller process's CPU time over
	// TotalCost (refill included) per created claim; nil without its
	// metrics.
	ControllerCPUMsPerClaim *float64 `json:"controllerCpuMsPerClaim,omitempty"`
	// ProcessCPUMsPerClaim is each process's CPU time on the machine over
	// the same window per created claim: what a claim costs the API
	// server, etcd, the scheduler and kwok beside the controller.
	ProcessCPUMsPerClaim map[string]float64 `json:"processCpuMsPerClaim,omitempty"`
	// PassesPerClaim is each of the controller's reconcilers' passes over
	// the same window per created claim: how often a claim and its refill
	// wake each one.
	PassesPerClaim map[string]float64 `json:"passesPerClaim,omitempty"`
	// EnvSplit puts claims with env next to plain ones, when the run had
	// both (SteadyWarmEnv).
	EnvSplit   *EnvSplit   `json:"envSplit,omitempty"`
	Violations []Violation `json:"violations,omitempty"`

	samples []claimSample
}

type claimSample struct {
	name  string
	start time.Time
	// createRV is the resourceVersion of the create response.
	createRV string
	latency  time.Duration
	ready    bool
	warm     bool
	// env: the claim set env (SteadyWarmEnv).
	env bool
	err error
}

// claimLauncher creates claims and remembers when each create started.
type claimLauncher struct {
	env    *Env
	ns     string
	writes *writeCounter
	wg     sync.WaitGroup
	mu     sync.Mutex
	starts []claimSample
}

// benchEnv is what a claim with env sets: two literal variables, an API
// key and a task id, as an agent would.
var benchEnv = []extv1beta1.EnvVar{{Name: "API_KEY", Value: "sk-bench-0123456789abcdef0123456789abcdef"}, {Name: "TASK_ID", Value: "42"}}

// launch creates one claim (with benchEnv when env) in its own goroutine:
// the load is open loop, never held back by slow creates.
func (l *claimLauncher) launch(ctx context.Context, name string, env bool) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		claim := &extv1beta1.SandboxClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: benchPool}},
		}
		if env {
			claim.Spec.Env = benchEnv
		}
		start := time.Now()
		l.writes.inc()
		cl, err := l.env.Agents.ExtensionsV1beta1().SandboxClaims(l.ns).Create(ctx, claim, metav1.CreateOptions{})
		rv := ""
		if err != nil {
			err = fmt.Errorf("creating claim %s: %w", name, err)
		} else {
			rv = cl.ResourceVersion
		}
		l.mu.Lock()
		l.starts = append(l.starts, claimSample{name: name, start: start, createRV: rv, env: env, err: err})
		l.mu.Unlock()
	}()
}

// createdNames are the claims created without error so far.
func (l *claimLauncher) createdNames() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for _, s := range l.starts {
		if s.err == nil {
			names = append(names, s.name)
		}
	}
	return names
}

// finishClaims waits for every created claim to be Ready and the pool to
// be whole again, takes the costs, runs the exactly-once checks on a fresh
// List and computes the latencies. firstCreate is the start of the run.
func (e *Env) finishClaims(ctx context.Context, ns string, w *agentWatch, l *claimLauncher, win *window, fill *FillResult, firstCreate time.Time) (*ClaimStats, error) {
	l.wg.Wait()
	names := l.createdNames()
	created := len(names)
	st := &ClaimStats{Pool: fill.Size, Claims: len(l.starts), Created: created, CreateErrors: len(l.starts) - created}
	for _, s := range l.starts {
		if s.err != nil {
			e.Progress.Logf("%v", s.err)
			break
		}
	}
	waitErr := e.waitUntil(ctx, fmt.Sprintf("%d claims Ready", created), func() (bool, string) {
		// Only this run's claims: a ramp's earlier steps share the watch.
		n := w.readyOf(names)
		return n >= created, fmt.Sprintf("%d/%d Ready", n, created)
	})
	if waitErr != nil {
		e.Progress.Logf("%v", waitErr)
	}
	var err error
	if st.ClaimPathCost, err = win.read(ctx); err != nil {
		return nil, err
	}
	refillErr := e.waitUntil(ctx, "the pool to refill", func() (bool, string) { return w.poolFull(fill.Size) })
	if refillErr != nil {
		e.Progress.Logf("%v", refillErr)
		st.RefillTimedOut = true
	} else {
		st.RefillSeconds = round3(max(w.refilledAt(fill.Size).Sub(firstCreate), 0).Seconds())
	}
	lowest, empty := w.poolLow(firstCreate, time.Now())
	st.PoolLowest, st.PoolEmptySeconds = lowest, round3(empty.Seconds())
	time.Sleep(e.Settle)
	if st.TotalCost, err = win.close(ctx); err != nil {
		return nil, err
	}
	st.RefillCreated = w.checker.CreatedBy(extv1beta1.SandboxWarmPoolKind, firstCreate)
	st.ColdCreated = w.checker.CreatedBy(extv1beta1.SandboxClaimKind, firstCreate)

	if err := e.finalCheck(ctx, ns, w); err != nil {
		return nil, err
	}
	st.Violations = w.checker.Violations()

	var all, warm, cold []time.Duration
	var paths []ClaimPath
	var split envSplitter
	var last time.Time
	for _, s := range l.starts {
		if s.err != nil {
			continue
		}
		at, sandbox, ok := w.readyAt(s.name)
		if !ok {
			st.NotReady++
			st.samples = append(st.samples, s)
			continue
		}
		s.ready, s.latency = true, at.Sub(s.start)
		info := w.checker.Sandbox(sandbox)
		s.warm = info.LaunchType == agentsv1beta1.LaunchTypeWarm ||
			(info.LaunchType == "" && info.FirstOwner.Kind == extv1beta1.SandboxWarmPoolKind)
		all = append(all, s.latency)
		var path *ClaimPath
		if s.warm {
			warm = append(warm, s.latency)
			if p, ok := w.writes.path(s.name, sandbox, s.createRV, w.readyVersion(s.name)); ok {
				paths = append(paths, p)
				path = &p
			}
		} else {
			cold = append(cold, s.latency)
		}
		split.add(s, path)
		if at.After(last) {
			last = at
		}
		st.samples = append(st.samples, s)
	}
	st.Latency, st.WarmLatency, st.ColdLatency = Summarize(all), Summarize(warm), Summarize(cold)
	st.CriticalPath = SummarizePaths(paths)
	st.EnvSplit = split.summary()
	if c := st.TotalCost.ControllerCPUSec; c != nil && created > 0 {
		ms := round3(*c * 1000 / float64(created))
		st.ControllerCPUMsPerClaim = &ms
	}
	if p := st.TotalCost.ProcessCPUSec; p != nil && created > 0 {
		st.ProcessCPUMsPerClaim = map[string]float64{}
		for name, sec := range p {
			st.ProcessCPUMsPerClaim[name] = round3(sec * 1000 / float64(created))
		}
	}
	if p := st.TotalCost.ControllerPasses; len(p) > 0 && created > 0 {
		st.PassesPerClaim = map[string]float64{}
		for name, n := range p {
			st.PassesPerClaim[name] = round3(n / float64(created))
		}
	}
	if !last.IsZero() {
		st.AllReadySeconds = round3(last.Sub(firstCreate).Seconds())
	}
	writes, measured := st.TotalCost.ControllerWritesOrEstimate()
	st.WritesMeasured = measured
	if created > 0 {
		st.WritesPerClaim = round3(writes / float64(created))
		st.WritesPerClaimPath = round3(max(writes-float64(st.RefillCreated)*fill.ControllerWritesPerMember, 0) / float64(created))
	}
	return st, nil
}

// finalCheck feeds a fresh List of Sandboxes and claims to the checker's
// settled-state rules.
func (e *Env) finalCheck(ctx context.Context, ns string, w *agentWatch) error {
	sbs, err := e.Agents.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing sandboxes: %w", err)
	}
	cls, err := e.Agents.ExtensionsV1beta1().SandboxClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing claims: %w", err)
	}
	var so []SandboxObs
	for i := range sbs.Items {
		so = append(so, sandboxObs(&sbs.Items[i], false))
	}
	var co []ClaimObs
	for i := range cls.Items {
		co = append(co, claimObs(&cls.Items[i], false))
	}
	w.checker.Final(time.Now(), []string{benchPool}, so, co)
	return nil
}

// latencyValues returns the latencies of the Ready claims in ms, split.
func (st *ClaimStats) latencyValues() (all, warm, cold []float64) {
	for _, s := range st.samples {
		if !s.ready {
			continue
		}
		ms := round3(float64(s.latency.Microseconds()) / 1000)
		all = append(all, ms)
		if s.warm {
			warm = append(warm, ms)
		} else {
			cold = append(cold, ms)
		}
	}
	return all, warm, cold
}

// ClaimsResult is the burst scenario.
type ClaimsResult struct {
	PoolFill *FillResult `json:"poolFill"`
	ClaimStats
	// CDFs of the latencies in ms, for the plots.
	CDF     []Point `json:"cdf"`
	WarmCDF []Point `json:"warmCdf"`
	ColdCDF []Point `json:"coldCdf"`
}

// Claims fills a pool of poolSize, then creates m claims at once and
// follows them to Ready, checking exactly-once binding throughout, and
// waits for the pool to refill.
func (e *Env) Claims(ctx context.Context, poolSize, m int) (*ClaimsResult, error) {
	e.Progress.Scenario("claims")
	ns, w, fill, done, err := e.poolScenario(ctx, "claims", poolSize, true)
	defer done()
	if err != nil {
		return nil, err
	}
	e.Progress.Logf("pool of %d Ready in %.2fs; creating %d claims at once", poolSize, fill.FillSeconds, m)

	var writes writeCounter
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	l := &claimLauncher{env: e, ns: ns, writes: &writes}
	start := time.Now()
	for i := range m {
		l.launch(ctx, fmt.Sprintf("claim-%05d", i), false)
	}
	st, err := e.finishClaims(ctx, ns, w, l, win, fill, start)
	if err != nil {
		return nil, err
	}
	r := &ClaimsResult{PoolFill: fill, ClaimStats: *st}
	all, warm, cold := st.latencyValues()
	r.CDF, r.WarmCDF, r.ColdCDF = CDF(all), CDF(warm), CDF(cold)
	e.Progress.Logf("%d claims: p50 %.1fms p99 %.1fms max %.1fms (%d warm, %d cold), all Ready in %.2fs, refilled in %.2fs, %d violations",
		st.Created, st.Latency.P50Ms, st.Latency.P99Ms, st.Latency.MaxMs, st.WarmLatency.N, st.ColdLatency.N, st.AllReadySeconds, st.RefillSeconds, len(st.Violations))
	return r, nil
}
