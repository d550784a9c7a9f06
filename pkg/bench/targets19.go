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
	"fmt"
	"strings"
)

// Thresholds of issue #19, each against a yardstick of the same run where
// the issue names one.
const (
	target19CriticalPathWrites = 2.0
	target19WarmRate           = 10.0
	target19WarmP50RTTs        = 6.0
	target19SustainedRate      = 25.0
	target19SustainedSeconds   = 60.0
	target19SustainedPool      = 100
	target19CPUMsPerClaim      = 5.0
	target19PoolVsRS           = 1.5
)

// issue19 labels a goal of issue #19.
func issue19(format string, args ...any) string {
	return fmt.Sprintf(format, args...) + " (issue 19)"
}

// targets19 are issue #19's targets, after issue #9's.
func (r *Report) targets19(rtt float64) []Target {
	notMeasured := func(goal, why string) Target { return Target{Goal: goal, Measured: "not measured", Note: why} }
	var ts []Target

	goal := issue19("warm claim critical path ≤ %.0f API writes", target19CriticalPathWrites)
	run, from := r.warmRun()
	if s := r.steadyAt(target19WarmRate); s != nil && s.CriticalPath != nil {
		// The rate the issue measures its warm path at, when run.
		run, from = &s.ClaimStats, fmt.Sprintf("steady %g/s", s.Rate)
	}
	if run != nil && run.CriticalPath != nil {
		p := run.CriticalPath
		ts = append(ts, Target{Goal: goal,
			Measured: fmt.Sprintf("median %g (mean %.2f: claim %.2f, Sandbox %.2f, Pod %.2f; max %g; %d warm claims, %s)",
				p.P50, p.Mean, p.ClaimMean, p.SandboxMean, p.PodMean, p.Max, p.Claims, from),
			Pass: pass(p.P50 <= target19CriticalPathWrites), Note: CriticalPathDefinition})
	} else {
		ts = append(ts, notMeasured(goal, "needs warm claims (steady or claims) and integer resourceVersions"))
	}

	goal = issue19("steady %g/s: warm p50 ≤ %.0f × rtt p50", target19WarmRate, target19WarmP50RTTs)
	if s := r.steadyAt(target19WarmRate); s != nil && rtt > 0 && s.WarmLatency.N > 0 {
		// The yardstick is the round trip at the claims' pace (one every
		// 100 ms, the idle cluster), when the rtt scenario timed it: a
		// claim's writes are sent after a pause, like those, and on our
		// machines a round trip sent after a pause takes 2–2.5 × one sent
		// right after the last (docs/performance.md). Both ratios are
		// shown; the back-to-back one is what earlier reports compared.
		yardstick, what := rtt, fmt.Sprintf("rtt p50 %.2f ms", rtt)
		if pc := r.pacedRTT(); pc > 0 {
			yardstick = pc
			what = fmt.Sprintf("rtt p50 %.2f ms at the claims' pace (one write every %v, idle cluster; back to back %.2f ms: %.1f ×)",
				pc, pacedRTTInterval, rtt, s.WarmLatency.P50Ms/rtt)
		}
		limit := target19WarmP50RTTs * yardstick
		t := Target{Goal: goal,
			Measured: fmt.Sprintf("warm p50 %.1f ms = %.1f × %s (limit %.1f ms; %d warm, %d not Ready)", s.WarmLatency.P50Ms, s.WarmLatency.P50Ms/yardstick, what, limit, s.WarmLatency.N, s.NotReady),
			Pass:     pass(s.WarmLatency.P50Ms <= limit && s.NotReady == 0)}
		if l := s.LoadedRTT; l != nil && l.P50Ms > 0 {
			// The verdict stays on the idle cluster's rtt; this says how
			// much of the gap is the server under the run's own load.
			t.Note = fmt.Sprintf("under the run's load the rtt p50 was %.2f ms: warm p50 = %.1f × that", l.P50Ms, s.WarmLatency.P50Ms/l.P50Ms)
		}
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs rtt and steady at %g/s with warm claims", target19WarmRate)))
	}

	goal = issue19("steady %g/s for %.0f s against a pool of %d: p99 ≤ %.0f ms, 0 cold", target19SustainedRate, target19SustainedSeconds, target19SustainedPool, rampP99Ms)
	if s := r.steadyAt(target19SustainedRate); s != nil {
		ok, why := rampVerdict(s)
		measured := fmt.Sprintf("p99 %.0f ms, %d cold, %d/%d Ready, sent at %.1f/s, %d violations", s.Latency.P99Ms, s.cold(), s.Created-s.NotReady, s.Claims, s.AchievedRate, len(s.Violations))
		t := Target{Goal: goal, Measured: measured, Pass: pass(ok), Note: why}
		if s.DurationSeconds != target19SustainedSeconds || s.Pool != target19SustainedPool {
			// Another experiment: its figure, but no verdict.
			t.Pass = nil
			t.Note = fmt.Sprintf("ran %gs against a pool of %d, not the target's %.0fs and %d", s.DurationSeconds, s.Pool, target19SustainedSeconds, target19SustainedPool)
		}
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs steady run %g:%.0fs:%d", target19SustainedRate, target19SustainedSeconds, target19SustainedPool)))
	}

	goal = issue19("ramp: highest rate with p99 ≤ %.0f ms and 0 cold ≥ %g/s", rampP99Ms, target19SustainedRate)
	if rp := r.Ramp; rp != nil && len(rp.Steps) > 0 {
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("%g/s (%s)", rp.Highest, rampSteps(rp)),
			Pass: pass(rp.Highest >= target19SustainedRate),
			Note: fmt.Sprintf("steps of %gs against one pool of %d; %s", rp.StepSeconds, rp.Pool, rp.Stopped)})
	} else {
		ts = append(ts, notMeasured(goal, "needs the ramp scenario"))
	}

	goal = issue19("controller CPU per claim incl. refill ≤ %.0f ms at %g/s", target19CPUMsPerClaim, target19WarmRate)
	if s := r.steadyAt(target19WarmRate); s != nil && s.ControllerCPUMsPerClaim != nil {
		v := *s.ControllerCPUMsPerClaim
		ts = append(ts, Target{Goal: goal,
			Measured: fmt.Sprintf("%.2f ms (%.2f s of CPU for %d claims)", v, *s.TotalCost.ControllerCPUSec, s.Created),
			Pass:     pass(v <= target19CPUMsPerClaim),
			Note:     fmt.Sprintf("process_cpu_seconds_total delta over %.1fs: first create until the pool refilled, plus the settle", s.TotalCost.Seconds)})
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs the controller metrics URL and steady at %g/s", target19WarmRate)))
	}

	goal = issue19("pool fill ≤ %.1f × ReplicaSet fill", target19PoolVsRS)
	if v, what, ok := r.fillRatio(); ok {
		t := Target{Goal: goal, Measured: fmt.Sprintf("%.2f× (%s)", v, what), Pass: pass(v <= target19PoolVsRS)}
		if r.Pool.Size != r.RS.Size {
			t.Pass, t.Note = nil, "sizes differ"
		}
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(goal, "needs rs and pool"))
	}

	goal = issue19("controller RSS with %d sandboxes ≤ %.0f MiB, GOGC noted", targetRSSSandboxes, targetRSSMiB)
	if big := r.rssPool(); big != nil {
		v := *big.Cost.ControllerRSSPeakMB
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("peak %.1f MiB with a pool of %d; %s", v, big.Size, r.Cluster.gogc(big.Cost.ControllerGOGCEnd)), Pass: pass(v <= targetRSSMiB),
			Note: "the issue asks for it without a GOGC that costs CPU: compare the CPU row"})
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs the controller metrics URL and a pool of %d (--rss-pool)", targetRSSSandboxes)))
	}
	return ts
}

// rampSteps is the ramp's steps in one line: rate and verdict.
func rampSteps(rp *RampResult) string {
	var parts []string
	for _, s := range rp.Steps {
		if s.Pass {
			parts = append(parts, fmt.Sprintf("%g ✓", s.Rate))
		} else {
			parts = append(parts, fmt.Sprintf("%g ✗ %s", s.Rate, s.Why))
		}
	}
	return strings.Join(parts, ", ")
}

// gogc says which GC target the controller ran with and where it came
// from: the controller sets its own after each collection, from its live
// heap, unless GOGC is in its environment. at is the reading at the end of
// the window the figure is from, when there is one; otherwise the run's
// first.
func (c Cluster) gogc(at *float64) string {
	v := "GOGC not read"
	if at != nil {
		v = fmt.Sprintf("GOGC %g at the end", *at)
	} else if c.ControllerGOGC != nil {
		v = fmt.Sprintf("GOGC %g when the run began", *c.ControllerGOGC)
	}
	switch c.ControllerGOGCEnv {
	case "":
		return v + " (the controller's environment not reported)"
	case "unset":
		return v + " (GOGC not set in the controller's environment: its own, set from its live heap)"
	default:
		return v + fmt.Sprintf(" (GOGC=%s set in the controller's environment)", c.ControllerGOGCEnv)
	}
}
