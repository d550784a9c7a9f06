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
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The bar every ramp step must clear (issue 19, target 2), also applied
// to the sustained steady run of that target.
const (
	rampP99Ms = 1000.0
	// rampMinSent is the fraction of the rate the bench must have sent
	// at: below it the step measured the bench, not the controller.
	rampMinSent = 0.95
)

// RampSpec is the ramp scenario: steady steps of increasing rate, each
// lasting Step, against one pool of Pool.
type RampSpec struct {
	Rates []float64
	Step  time.Duration
	Pool  int
}

// ParseRampRates parses "10,15,20": positive and strictly increasing, as
// the stop rule assumes.
func ParseRampRates(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := strconv.ParseFloat(part, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("ramp rate %q: want a positive number", part)
		}
		if len(out) > 0 && r <= out[len(out)-1] {
			return nil, fmt.Errorf("ramp rates must increase: %g after %g", r, out[len(out)-1])
		}
		out = append(out, r)
	}
	return out, nil
}

// RampStep is one step: its steady run and whether it met the bar.
type RampStep struct {
	*SteadyResult
	Pass bool `json:"pass"`
	// Why lists what failed the step.
	Why string `json:"why,omitempty"`
}

// RampResult is the ramp scenario.
type RampResult struct {
	Pool        int         `json:"pool"`
	StepSeconds float64     `json:"stepSeconds"`
	Rates       []float64   `json:"rates"`
	PoolFill    *FillResult `json:"poolFill"`
	Steps       []RampStep  `json:"steps"`
	// Highest is the rate of the last passing step (every step before it
	// passed too); 0 when the first step failed.
	Highest float64 `json:"highest"`
	// Stopped says why the ramp ended.
	Stopped string `json:"stopped"`
}

// rampVerdict applies the bar of issue 19's target 2 to one steady run:
// every claim created and Ready, none cold, p99 ≤ 1 s, no exactly-once
// violation, the pool whole again afterwards, and the load really sent.
func rampVerdict(s *SteadyResult) (bool, string) {
	var why []string
	if s.CreateErrors > 0 {
		why = append(why, fmt.Sprintf("%d creates refused", s.CreateErrors))
	}
	if s.NotReady > 0 {
		why = append(why, fmt.Sprintf("%d never Ready", s.NotReady))
	}
	if c := s.cold(); c > 0 {
		why = append(why, fmt.Sprintf("%d cold", c))
	}
	if s.Latency.P99Ms > rampP99Ms {
		why = append(why, fmt.Sprintf("p99 %.0f ms", s.Latency.P99Ms))
	}
	if n := len(s.Violations); n > 0 {
		why = append(why, fmt.Sprintf("%d violations", n))
	}
	if s.RefillTimedOut {
		why = append(why, "pool not refilled")
	}
	if s.AchievedRate > 0 && s.AchievedRate < rampMinSent*s.Rate {
		why = append(why, fmt.Sprintf("the bench sent at %.1f/s only", s.AchievedRate))
	}
	if s.Created == 0 {
		why = append(why, "no claim created")
	}
	return len(why) == 0, strings.Join(why, ", ")
}

// runRamp runs step for each rate in order and stops after the first
// failing step (or error): a higher rate on a machine already behind
// measures the backlog, not the rate. It returns the steps run, the
// highest passing rate and why it stopped.
func runRamp(rates []float64, step func(i int, rate float64) (*SteadyResult, error)) (steps []RampStep, highest float64, stopped string, err error) {
	for i, rate := range rates {
		s, err := step(i, rate)
		if err != nil {
			return steps, highest, fmt.Sprintf("error at %g/s", rate), err
		}
		ok, why := rampVerdict(s)
		steps = append(steps, RampStep{SteadyResult: s, Pass: ok, Why: why})
		if !ok {
			return steps, highest, fmt.Sprintf("first failing step: %g/s (%s)", rate, why), nil
		}
		highest = rate
	}
	return steps, highest, "every step passed", nil
}

// Ramp fills one pool of spec.Pool and runs a steady step at each rate of
// spec.Rates for spec.Step, stopping after the first step that misses
// the bar. One pool for every step, refilled and with the previous
// step's claims and their Pods gone before the next, so each step starts
// from the same state and measures whether the refill keeps up with the
// rate, as target 2 asks of a pool of 100.
func (e *Env) Ramp(ctx context.Context, spec RampSpec) (*RampResult, error) {
	e.Progress.Scenario("ramp")
	ns, w, fill, done, err := e.poolScenario(ctx, "ramp", spec.Pool, true)
	defer done()
	if err != nil {
		return nil, err
	}
	e.Progress.Logf("pool of %d Ready in %.2fs; steps of %s at %v/s", spec.Pool, fill.FillSeconds, spec.Step, spec.Rates)
	r := &RampResult{Pool: spec.Pool, StepSeconds: spec.Step.Seconds(), Rates: spec.Rates, PoolFill: fill}
	r.Steps, r.Highest, r.Stopped, err = runRamp(spec.Rates, func(i int, rate float64) (*SteadyResult, error) {
		from := 0
		if i > 0 {
			// The first step answers for the pool's fill too.
			from = len(w.checker.Violations())
			e.waitPodsGone(ctx, ns, spec.Pool)
		}
		e.Progress.Scenario(fmt.Sprintf("ramp-%g", rate))
		return e.steadyRun(ctx, ns, w, fill, rate, spec.Step, fmt.Sprintf("s%d-", i+1), from, 0)
	})
	e.Progress.Scenario("ramp")
	e.Progress.Logf("highest passing rate %g/s; %s", r.Highest, r.Stopped)
	return r, err
}

// waitPodsGone waits until ns holds only the pool's Pods: the garbage
// collector deletes a claimed Sandbox's Pod after the Sandbox, and a step
// sharing the machine with that would start behind.
func (e *Env) waitPodsGone(ctx context.Context, ns string, pool int) {
	err := e.waitUntil(ctx, "the previous step's Pods to be deleted", func() (bool, string) {
		pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) <= pool, fmt.Sprintf("%d Pods, pool %d", len(pods.Items), pool)
	})
	if err != nil {
		e.Progress.Logf("%v", err)
	}
}
