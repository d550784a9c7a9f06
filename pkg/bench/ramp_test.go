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
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goodStep is a steady run at rate that clears the ramp's bar.
func goodStep(rate float64) *SteadyResult {
	n := int(rate * 10)
	return &SteadyResult{Rate: rate, AchievedRate: rate, ClaimStats: ClaimStats{
		Claims: n, Created: n, Latency: Summary{N: n, P99Ms: 400}, WarmLatency: Summary{N: n, P99Ms: 400},
	}}
}

func TestRampVerdict(t *testing.T) {
	tests := map[string]struct {
		change  func(s *SteadyResult)
		wantOK  bool
		wantWhy string
	}{
		"clears the bar":       {func(*SteadyResult) {}, true, ""},
		"p99 at the limit":     {func(s *SteadyResult) { s.Latency.P99Ms = 1000 }, true, ""},
		"p99 over":             {func(s *SteadyResult) { s.Latency.P99Ms = 1001 }, false, "p99 1001 ms"},
		"a cold claim":         {func(s *SteadyResult) { s.ColdLatency.N = 1 }, false, "1 cold"},
		"a cold Sandbox":       {func(s *SteadyResult) { s.ColdCreated = 2 }, false, "2 cold"},
		"a claim never Ready":  {func(s *SteadyResult) { s.NotReady = 1 }, false, "1 never Ready"},
		"a refused create":     {func(s *SteadyResult) { s.CreateErrors = 1 }, false, "1 creates refused"},
		"a violation":          {func(s *SteadyResult) { s.Violations = []Violation{{Rule: "x"}} }, false, "1 violations"},
		"pool not refilled":    {func(s *SteadyResult) { s.RefillTimedOut = true }, false, "pool not refilled"},
		"the bench fell short": {func(s *SteadyResult) { s.AchievedRate = 9 }, false, "the bench sent at 9.0/s only"},
		"several reasons": {func(s *SteadyResult) { s.ColdLatency.N, s.Latency.P99Ms = 3, 4300 }, false,
			"3 cold, p99 4300 ms"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := goodStep(10)
			tc.change(s)
			ok, why := rampVerdict(s)
			if ok != tc.wantOK || why != tc.wantWhy {
				t.Errorf("rampVerdict = %v %q, want %v %q", ok, why, tc.wantOK, tc.wantWhy)
			}
		})
	}
}

func TestRunRampStopsAfterFirstFailingStep(t *testing.T) {
	rates := []float64{10, 15, 20, 25, 30}
	fails := func(at float64) func(int, float64) (*SteadyResult, error) {
		return func(_ int, rate float64) (*SteadyResult, error) {
			s := goodStep(rate)
			if rate >= at {
				s.ColdLatency.N = 5
			}
			return s, nil
		}
	}
	tests := map[string]struct {
		step        func(int, float64) (*SteadyResult, error)
		wantRun     []float64
		wantHighest float64
		wantStopped string
		wantErr     bool
	}{
		"fails in the middle": {fails(20), []float64{10, 15, 20}, 15, "first failing step: 20/s (5 cold)", false},
		"first step fails":    {fails(10), []float64{10}, 0, "first failing step: 10/s (5 cold)", false},
		"every step passes":   {fails(100), rates, 30, "every step passed", false},
		"an error ends it": {func(i int, rate float64) (*SteadyResult, error) {
			if rate == 25 {
				return nil, errors.New("lost the cluster")
			}
			return goodStep(rate), nil
		}, []float64{10, 15, 20}, 20, "error at 25/s", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var called []int
			step := func(i int, rate float64) (*SteadyResult, error) {
				called = append(called, i)
				return tc.step(i, rate)
			}
			steps, highest, stopped, err := runRamp(rates, step)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var run []float64
			for _, s := range steps {
				run = append(run, s.Rate)
			}
			if diff := cmp.Diff(tc.wantRun, run); diff != "" {
				t.Errorf("steps run (-want,+got):\n%s", diff)
			}
			if len(called) != len(tc.wantRun)+boolInt(tc.wantErr) {
				t.Errorf("step called %d times (%v), want no step after the first failure", len(called), called)
			}
			for i, s := range steps {
				if want := i < len(steps)-1 || tc.wantStopped == "every step passed" || tc.wantErr; s.Pass != want {
					t.Errorf("step %g/s pass = %v, want %v", s.Rate, s.Pass, want)
				}
			}
			if highest != tc.wantHighest || stopped != tc.wantStopped {
				t.Errorf("highest %g, stopped %q; want %g, %q", highest, stopped, tc.wantHighest, tc.wantStopped)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseRampRates(t *testing.T) {
	got, err := ParseRampRates(" 10, 15,20,,25 ")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{10, 15, 20, 25}, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if got, err := ParseRampRates(""); err != nil || got != nil {
		t.Errorf(`ParseRampRates("") = %v, %v; want none`, got, err)
	}
	for _, bad := range []string{"10,10", "20,15", "0,5", "-1", "x"} {
		if _, err := ParseRampRates(bad); err == nil {
			t.Errorf("ParseRampRates(%q) accepted", bad)
		}
	}
}
