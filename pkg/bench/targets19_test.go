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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

// report19 is a run meeting every target of issue 19.
func report19() *Report {
	steady10 := goodStep(10)
	steady10.DurationSeconds, steady10.Pool = 30, 50
	steady10.WarmLatency.P50Ms = 11 // rtt 2 ms: 5.5×
	steady10.CriticalPath = &CriticalPath{Claims: 300, P50: 2, Max: 3, Mean: 2.1}
	steady10.ControllerCPUMsPerClaim = ptr.To(4.5)
	steady10.TotalCost.ControllerCPUSec = ptr.To(1.35)
	steady25 := goodStep(25)
	steady25.DurationSeconds, steady25.Pool = 60, 100
	ramp := &RampResult{Pool: 100, StepSeconds: 30, Rates: []float64{20, 25, 30}, Highest: 25, Stopped: "first failing step: 30/s (p99 1500 ms)"}
	for _, rate := range []float64{20, 25} {
		ramp.Steps = append(ramp.Steps, RampStep{SteadyResult: goodStep(rate), Pass: true})
	}
	ramp.Steps = append(ramp.Steps, RampStep{SteadyResult: goodStep(30), Why: "p99 1500 ms"})
	return &Report{
		Cluster: Cluster{ControllerMetrics: true, ControllerGOGC: ptr.To(800.0), ControllerGOGCEnv: "unset"},
		RTT:     &RTTResult{Latency: Summary{P50Ms: 2}},
		RS:      &FillResult{Size: 300, FillSeconds: 2},
		Pool:    &FillResult{Size: 300, FillSeconds: 2.9},
		RSSPool: &FillResult{Size: 3000, Cost: Cost{ControllerRSSPeakMB: ptr.To(65.0), ControllerGOGCEnd: ptr.To(63.0)}},
		Steady:  []*SteadyResult{steady10, steady25},
		Ramp:    ramp,
	}
}

// results19 are the verdicts of issue 19's rows, in their order.
func results19(r *Report) (goals, results []string) {
	r.Evaluate()
	for _, t := range r.Targets {
		if !strings.HasSuffix(t.Goal, "(issue 19)") {
			continue
		}
		res := "n/a"
		if t.Pass != nil {
			res = map[bool]string{true: "PASS", false: "FAIL"}[*t.Pass]
		}
		if res == "n/a" && t.Measured == "not measured" {
			res = "not measured"
		}
		goals, results = append(goals, t.Goal), append(results, res)
	}
	return goals, results
}

func TestTargets19(t *testing.T) {
	pass7 := []string{"PASS", "PASS", "PASS", "PASS", "PASS", "PASS", "PASS"}
	with := func(i int, v string) []string {
		out := append([]string(nil), pass7...)
		out[i] = v
		return out
	}
	tests := map[string]struct {
		change func(r *Report)
		want   []string // critical path, warm p50, 25/s, ramp, CPU, fill, RSS
	}{
		"every target met":          {func(*Report) {}, pass7},
		"critical path of 3 writes": {func(r *Report) { r.Steady[0].CriticalPath.P50 = 3 }, with(0, "FAIL")},
		"critical path not measured (resourceVersions not ordered)": {func(r *Report) { r.Steady[0].CriticalPath = nil }, with(0, "not measured")},
		"warm p50 over 6 × rtt":                                     {func(r *Report) { r.Steady[0].WarmLatency.P50Ms = 12.5 }, with(1, "FAIL")},
		"no rtt":                                                    {func(r *Report) { r.RTT = nil }, with(1, "not measured")},
		// 12.5 × the back-to-back rtt, 5 × the paced one: the paced one is the yardstick.
		"warm p50 within 6 × the paced rtt": {func(r *Report) {
			r.Steady[0].WarmLatency.P50Ms, r.RTT.Paced = 25, &Summary{N: 50, P50Ms: 5}
		}, pass7},
		"warm p50 over 6 × the paced rtt": {func(r *Report) {
			r.Steady[0].WarmLatency.P50Ms, r.RTT.Paced = 31, &Summary{N: 50, P50Ms: 5}
		}, with(1, "FAIL")},
		"25/s: cold claims":           {func(r *Report) { r.Steady[1].ColdCreated = 134 }, with(2, "FAIL")},
		"25/s: p99 over 1 s":          {func(r *Report) { r.Steady[1].Latency.P99Ms = 4300 }, with(2, "FAIL")},
		"25/s: another experiment":    {func(r *Report) { r.Steady[1].DurationSeconds = 20 }, with(2, "n/a")},
		"25/s not run":                {func(r *Report) { r.Steady = r.Steady[:1] }, with(2, "not measured")},
		"ramp tops out below 25/s":    {func(r *Report) { r.Ramp.Highest = 20 }, with(3, "FAIL")},
		"ramp not run":                {func(r *Report) { r.Ramp = nil }, with(3, "not measured")},
		"CPU over 5 ms per claim":     {func(r *Report) { r.Steady[0].ControllerCPUMsPerClaim = ptr.To(15.0) }, with(4, "FAIL")},
		"CPU without the metrics URL": {func(r *Report) { r.Steady[0].ControllerCPUMsPerClaim = nil }, with(4, "not measured")},
		"fill 2 × the ReplicaSet":     {func(r *Report) { r.Pool.FillSeconds = 4 }, with(5, "FAIL")},
		// The first round at 2 ×, the median of three at 1.45 ×.
		"fill rounds: the median passes": {func(r *Report) {
			r.Pool.FillSeconds = 4
			r.FillRounds = []FillRound{{RSSeconds: 2, PoolSeconds: 4}, {RSSeconds: 2, PoolSeconds: 2.9}, {RSSeconds: 2, PoolSeconds: 2.6}}
		}, pass7},
		"fill rounds: the median fails": {func(r *Report) {
			r.FillRounds = []FillRound{{RSSeconds: 2, PoolSeconds: 2.9}, {RSSeconds: 2, PoolSeconds: 3.2}, {RSSeconds: 2, PoolSeconds: 3.4}}
		}, with(5, "FAIL")},
		"fill of different sizes": {func(r *Report) { r.RS.Size = 50 }, with(5, "n/a")},
		"RSS over 70 MiB":         {func(r *Report) { r.RSSPool.Cost.ControllerRSSPeakMB = ptr.To(87.0) }, with(6, "FAIL")},
		"no pool of 3000":         {func(r *Report) { r.RSSPool = nil }, with(6, "not measured")},
		"an empty run":            {func(r *Report) { *r = Report{} }, []string{"not measured", "not measured", "not measured", "not measured", "not measured", "not measured", "not measured"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := report19()
			tc.change(r)
			goals, got := results19(r)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdicts (-want,+got):\n%s\ngoals: %q", diff, goals)
			}
		})
	}
}

// The rtt under the run's own load is a note on the warm p50 row; the
// verdict stays the issue's, against the idle rtt.
func TestTargets19WarmP50UnderLoad(t *testing.T) {
	r := report19()
	r.Steady[0].WarmLatency.P50Ms = 30 // 15 × the idle rtt of 2 ms
	r.Steady[0].LoadedRTT = &Summary{N: 60, P50Ms: 10}
	r.Evaluate()
	tg := row19(t, r, "warm p50")
	if tg.Pass == nil || *tg.Pass {
		t.Errorf("warm p50 at 15 × the idle rtt passed: %+v", tg)
	}
	if want := "under the run's load the rtt p50 was 10.00 ms: warm p50 = 3.0 × that"; tg.Note != want {
		t.Errorf("note %q, want %q", tg.Note, want)
	}
}

// row19 is r's issue 19 row whose goal contains part; t fails without one.
func row19(t *testing.T, r *Report, part string) Target {
	t.Helper()
	for _, tg := range r.Targets {
		if strings.Contains(tg.Goal, part) && strings.HasSuffix(tg.Goal, "(issue 19)") {
			return tg
		}
	}
	t.Fatalf("no issue 19 row for %q", part)
	return Target{}
}

func TestTargets19Figures(t *testing.T) {
	r := report19()
	r.Evaluate()
	want := map[string]string{
		"warm claim critical path": "median 2 (",
		"warm p50":                 "= 5.5 × rtt p50 2.00 ms",
		"ramp:":                    "25/s (20 ✓, 25 ✓, 30 ✗ p99 1500 ms)",
		"controller CPU per claim": "4.50 ms (1.35 s of CPU for 100 claims)",
		"controller RSS":           "GOGC 63 at the end (GOGC not set in the controller's environment: its own, set from its live heap)",
	}
	for prefix, part := range want {
		if tg := row19(t, r, prefix); !strings.Contains(tg.Measured, part) {
			t.Errorf("%s: measured %q, want it to contain %q", tg.Goal, tg.Measured, part)
		}
	}
	if md := r.Markdown(nil); !strings.Contains(md, "**Highest passing rate: 25/s**") || !strings.Contains(md, "FAIL: p99 1500 ms") {
		t.Errorf("the report has no ramp section:\n%s", md)
	}
}

// With the rtt at the claims' pace timed, the warm p50 row is judged
// against it and shows the back-to-back ratio beside it; the report's rtt
// table has both rows.
func TestTargets19WarmP50AgainstPacedRTT(t *testing.T) {
	r := report19()
	r.RTT.N, r.RTT.Paced = 200, &Summary{N: 50, P50Ms: 4}
	r.Steady[0].WarmLatency.P50Ms = 20
	r.Evaluate()
	if got := r.Ratios["steady10.warmP50/rtt.pacedP50"]; got != 5 {
		t.Errorf("ratio steady10.warmP50/rtt.pacedP50 = %g, want 5", got)
	}
	want := "warm p50 20.0 ms = 5.0 × rtt p50 4.00 ms at the claims' pace (one write every 100ms, idle cluster; back to back 2.00 ms: 10.0 ×) (limit 24.0 ms;"
	if tg := row19(t, r, "warm p50"); !strings.HasPrefix(tg.Measured, want) || tg.Pass == nil || !*tg.Pass {
		t.Errorf("warm p50 row: measured %q pass %v, want it to start with %q and pass", tg.Measured, tg.Pass, want)
	}
	md := r.Markdown(nil)
	for _, row := range []string{"| ConfigMap create → ADDED, back to back (200) |", "| the same, one every 100ms (50) |"} {
		if !strings.Contains(md, row) {
			t.Errorf("the report has no rtt row %q", row)
		}
	}
}

// With several fill rounds the fill row names the median and every
// round's ratio, the ratio line carries the median, and the report lists
// the rounds.
func TestFillRoundsMedian(t *testing.T) {
	r := report19()
	r.FillRounds = []FillRound{{RSSeconds: 2, PoolSeconds: 2.9}, {RSSeconds: 2.5, PoolSeconds: 5}, {RSSeconds: 2, PoolSeconds: 2.6}, {RSSeconds: 1, PoolSeconds: 1.5}}
	r.Evaluate()
	// 1.45, 2.00, 1.30, 1.50: the median of four is (1.45 + 1.50) / 2.
	if got := r.Ratios["poolFill/rsFill"]; got != 1.475 {
		t.Errorf("poolFill/rsFill = %g, want the median 1.475", got)
	}
	want := "1.48× (median of 4 alternating rounds: 1.45, 2.00, 1.30, 1.50; the first pool 300: 2.90s, RS 300: 2.00s)"
	if tg := row19(t, r, "pool fill ≤ 1.5"); tg.Measured != want || tg.Pass == nil || !*tg.Pass {
		t.Errorf("fill row: measured %q pass %v, want %q and PASS", tg.Measured, tg.Pass, want)
	}
	if md := r.Markdown(nil); !strings.Contains(md, "| 2 | 2.50 | 5.00 | 2.00 |") {
		t.Errorf("the report does not list the rounds:\n%s", md)
	}
}
