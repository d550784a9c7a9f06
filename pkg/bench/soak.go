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
	"math"
	"strings"
	"sync"
	"time"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// SoakSpec is one soak run: a claim churn against one controller process
// whose memory and goroutines are sampled from its /metrics.
type SoakSpec struct {
	Churn      ChurnSpec
	PoolSize   int
	Controller ControllerSpec
	// Interval between samples.
	Interval time.Duration
	// WarmupClaims are left out of the fit: informer caches, pools and
	// the heap's first growth settle in the first thousands of claims.
	WarmupClaims int
	// GCBeforeSample asks the controller for a heap profile with gc=1
	// before each sample (it serves pprof with --enable-pprof-debug), so
	// heap in use is the live heap and not wherever the GC cycle stood.
	GCBeforeSample bool
	Tolerance      SoakTolerance
	SettleTimeout  time.Duration
}

// SoakTolerance is the growth per 10,000 claims still called flat.
type SoakTolerance struct {
	RSSMiB     float64 `json:"rssMiBPer10k"`
	HeapMiB    float64 `json:"heapMiBPer10k"`
	Goroutines float64 `json:"goroutinesPer10k"`
}

// SoakSample is one reading of the controller.
type SoakSample struct {
	AtSeconds float64 `json:"atSeconds"`
	// Claims is how many creates had succeeded when it was taken.
	Claims     int     `json:"claims"`
	RSSMiB     float64 `json:"rssMiB"`
	HeapMiB    float64 `json:"heapInuseMiB"`
	Goroutines float64 `json:"goroutines"`
	// LiveSandboxes are the Sandboxes the watch showed alive: what the
	// controller's caches must hold, so growth that follows it is load,
	// not a leak.
	LiveSandboxes int `json:"liveSandboxes"`
}

// SoakSlope is the least-squares fit of one metric over the samples after
// warm-up, against claims created.
type SoakSlope struct {
	Metric      string  `json:"metric"`
	Unit        string  `json:"unit"`
	SlopePer10k float64 `json:"slopePer10kClaims"`
	Intercept   float64 `json:"intercept"`
	Tolerance   float64 `json:"tolerancePer10k"`
	Samples     int     `json:"samples"`
	// Min and Max are the lowest and highest reading after warm-up.
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Flat bool    `json:"flat"`
}

// SoakResult is what a soak run saw; report.json is its JSON form.
type SoakResult struct {
	RunInfo
	Claims       ChurnStats    `json:"claims"`
	Rate         float64       `json:"rate"`
	Pools        int           `json:"pools"`
	PoolSize     int           `json:"poolSize"`
	Interval     float64       `json:"intervalSeconds"`
	WarmupClaims int           `json:"warmupClaims"`
	GCBefore     bool          `json:"gcBeforeSample"`
	Tolerance    SoakTolerance `json:"tolerance"`
	Samples      []SoakSample  `json:"samples"`
	Slopes       []SoakSlope   `json:"slopes"`
	Violations   []Violation   `json:"violations"`
	Errors       []string      `json:"errors,omitempty"`
}

// Failed reports growth beyond tolerance, a violation, or a harness error.
func (r *SoakResult) Failed() bool {
	for _, s := range r.Slopes {
		if !s.Flat {
			return true
		}
	}
	return len(r.Slopes) == 0 || len(r.Violations) > 0 || len(r.Errors) > 0
}

// Soak runs spec: one controller replica (leader election on, as in
// production), pools filled, the churn, a sample every Interval, then the
// settled-state checks and the fits.
func (e *Env) Soak(ctx context.Context, spec SoakSpec) (*SoakResult, error) {
	if err := spec.Churn.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	r := &SoakResult{RunInfo: RunInfo{Started: start}, Rate: spec.Churn.Rate, Pools: len(spec.Churn.Pools), PoolSize: spec.PoolSize,
		Interval: spec.Interval.Seconds(), WarmupClaims: spec.WarmupClaims, GCBefore: spec.GCBeforeSample, Tolerance: spec.Tolerance}
	cs := &controllerSet{spec: spec.Controller, logf: e.Progress.Logf, start: start}
	if _, err := cs.setMode(modeOneElected); err != nil {
		return nil, err
	}
	defer func() {
		if err := cs.stop(); err != nil {
			e.Progress.Logf("stopping the controller: %v", err)
		}
	}()
	if err := cs.waitLeading(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("waiting for the controller to lead: %w", err)
	}
	ns, w, stopWatch, err := e.churnNamespace(ctx, "soak", spec.Churn.Pools, spec.PoolSize, start)
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	ch := newChurn(ctx, e, ns, spec.Churn, w)
	s := &sampler{spec: spec, start: start, claims: func() int { return int(ch.created.Load()) },
		live: func() int {
			return w.checker.Controlled(extv1beta1.SandboxClaimKind) + w.checker.Controlled(extv1beta1.SandboxWarmPoolKind)
		}}
	sctx, stopSampling := context.WithCancel(ctx)
	sdone := make(chan struct{})
	go func() { defer close(sdone); s.run(sctx) }()
	e.Progress.Logf("soak: %d claims at %g/s over %d pools of %d; a sample every %s", spec.Churn.Claims, spec.Churn.Rate, len(spec.Churn.Pools), spec.PoolSize, spec.Interval)
	err = ch.run(ctx, func(created, errs int64) {
		last := s.last()
		e.Progress.Status("created %d/%d claims (%d refused), %d Ready; RSS %.1f MiB, heap %.1f MiB, %g goroutines",
			created, spec.Churn.Claims, errs, w.readyClaims(), last.RSSMiB, last.HeapMiB, last.Goroutines)
	})
	e.Progress.Done()
	s.sample(ctx) // the last point, at the full count
	stopSampling()
	<-sdone
	ch.finish()
	if err != nil {
		return nil, err
	}
	r.Violations = append(r.Violations, e.settleAndDrain(ctx, ns, w, spec.Churn.Pools, start, spec.SettleTimeout, &r.Claims.LeftAtEnd)...)
	r.Claims = churnStats(ch, w, r.Claims.LeftAtEnd)
	r.Samples, r.Errors = s.results()
	r.Violations = append(r.Violations, s.restarts...)
	r.Violations = append(w.checker.Violations(), r.Violations...)
	r.Slopes = fitSoak(r.Samples, spec.WarmupClaims, spec.Tolerance)
	if !r.Failed() && !e.Keep {
		e.deleteNamespace(context.WithoutCancel(ctx), ns)
	}
	r.Finished = time.Now()
	return r, nil
}

// sampler reads the controller's /metrics every Interval.
type sampler struct {
	spec   SoakSpec
	start  time.Time
	claims func() int
	live   func() int

	mu        sync.Mutex
	samples   []SoakSample
	errs      []string
	startTime float64
	restarts  []Violation
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.spec.Interval)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one reading; a failed one is recorded as an error.
func (s *sampler) sample(ctx context.Context) {
	c := s.spec.Controller
	if s.spec.GCBeforeSample {
		if _, err := get(ctx, strings.TrimSuffix(c.metricsURL(0), "/metrics")+"/debug/pprof/heap?gc=1"); err != nil && ctx.Err() == nil {
			s.fail("forcing a GC: %v", err)
		}
	}
	text, err := get(ctx, c.metricsURL(0))
	if err != nil {
		if ctx.Err() == nil {
			s.fail("reading metrics: %v", err)
		}
		return
	}
	vals := map[string]float64{}
	for _, name := range []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines", "process_start_time_seconds"} {
		samples, err := ParseMetric(text, name)
		if err != nil || len(samples) != 1 {
			s.fail("metric %s: %d samples, %v", name, len(samples), err)
			return
		}
		vals[name] = samples[0].Value
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := vals["process_start_time_seconds"]; s.startTime == 0 {
		s.startTime = st
	} else if st != s.startTime {
		s.restarts = append(s.restarts, Violation{At: time.Since(s.start), Rule: RuleControllerDied,
			Detail: fmt.Sprintf("the controller process started at %.0f, then at %.0f: the soak needs one process", s.startTime, st)})
		s.startTime = st
	}
	s.samples = append(s.samples, SoakSample{
		AtSeconds: round3(time.Since(s.start).Seconds()), Claims: s.claims(),
		RSSMiB: round3(vals["process_resident_memory_bytes"] / mib), HeapMiB: round3(vals["go_memstats_heap_inuse_bytes"] / mib),
		Goroutines: vals["go_goroutines"], LiveSandboxes: s.live(),
	})
}

const mib = 1 << 20

func (s *sampler) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *sampler) last() SoakSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return SoakSample{}
	}
	return s.samples[len(s.samples)-1]
}

func (s *sampler) results() ([]SoakSample, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SoakSample(nil), s.samples...), append([]string(nil), s.errs...)
}

// fitSoak fits each metric against claims created over the samples past
// warmup and judges it against its tolerance: a slope at or below it is
// flat (a shrinking metric is flat too).
func fitSoak(samples []SoakSample, warmup int, tol SoakTolerance) []SoakSlope {
	metrics := []struct {
		name, unit string
		tol        float64
		get        func(SoakSample) float64
	}{
		{"RSS", "MiB", tol.RSSMiB, func(s SoakSample) float64 { return s.RSSMiB }},
		{"heap in use", "MiB", tol.HeapMiB, func(s SoakSample) float64 { return s.HeapMiB }},
		{"goroutines", "", tol.Goroutines, func(s SoakSample) float64 { return s.Goroutines }},
	}
	var xs []float64
	var after []SoakSample
	for _, s := range samples {
		if s.Claims >= warmup {
			xs = append(xs, float64(s.Claims)/10000)
			after = append(after, s)
		}
	}
	if len(after) < 3 {
		return nil
	}
	var out []SoakSlope
	for _, m := range metrics {
		ys := make([]float64, len(after))
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, s := range after {
			ys[i] = m.get(s)
			lo, hi = math.Min(lo, ys[i]), math.Max(hi, ys[i])
		}
		slope, intercept := leastSquares(xs, ys)
		if slope = round3(slope); slope == 0 {
			slope = 0 // not -0 in the report
		}
		out = append(out, SoakSlope{Metric: m.name, Unit: m.unit, SlopePer10k: slope, Intercept: round3(intercept),
			Tolerance: m.tol, Samples: len(after), Min: lo, Max: hi, Flat: slope <= m.tol})
	}
	return out
}

// leastSquares fits y = slope*x + intercept; a degenerate x (all equal)
// gives slope 0 and the mean.
func leastSquares(xs, ys []float64) (slope, intercept float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if n == 0 || den == 0 {
		if n == 0 {
			return 0, 0
		}
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / den
	return slope, (sy - slope*sx) / n
}
