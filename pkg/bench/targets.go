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
	"math"
)

// Target is one goal of issue #9, #13 or #19 with what this run measured.
type Target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Pass is nil when the run did not measure it.
	Pass *bool  `json:"pass"`
	Note string `json:"note,omitempty"`
}

// Thresholds of issue #9.
const (
	targetPoolVsRS           = 1.2
	targetWritesPerMember    = 2.5
	targetWritesPerWarmClaim = 3.0
	targetWritesWithRefill   = 6.0
	targetWarmBurstRTTs      = 300.0
	targetSteadyP50RTTs      = 15.0
	targetSteadyLowRate      = 10.0
	targetSteadyHighRate     = 45.0
	targetSteadyHighP99Ms    = 1000.0
	targetRSSMiB             = 70.0
	targetRSSSandboxes       = 3000
	// Issue 13: the router against a minimal httputil.ReverseProxy.
	targetRouterRPS = 0.9
	targetRouterP50 = 1.2
)

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

// pacedRTT is the rtt scenario's p50 at the claims' pace, 0 when not timed.
func (r *Report) pacedRTT() float64 {
	if r.RTT == nil || r.RTT.Paced == nil {
		return 0
	}
	return r.RTT.Paced.P50Ms
}

// Evaluate computes the ratios and the issue #9 targets of r.
func (r *Report) Evaluate() {
	r.Ratios = map[string]float64{}
	rtt := 0.0
	if r.RTT != nil {
		rtt = r.RTT.Latency.P50Ms
	}
	if r.Pool != nil && r.RS != nil {
		if v, _, ok := r.fillRatio(); ok {
			r.Ratios["poolFill/rsFill"] = round3(v)
		}
		r.Ratios["poolWritesPerMember/rsWritesPerMember"] = ratio(r.Pool.ControllerWritesPerMember, r.RS.ControllerWritesPerMember)
	}
	if r.Claims != nil && rtt > 0 {
		r.Ratios["claims.p50/rtt.p50"] = ratio(r.Claims.Latency.P50Ms, rtt)
		r.Ratios["claims.p99/rtt.p50"] = ratio(r.Claims.Latency.P99Ms, rtt)
		r.Ratios["claims.warmMax/rtt.p50"] = ratio(r.Claims.WarmLatency.MaxMs, rtt)
	}
	for _, s := range r.Steady {
		if rtt > 0 {
			r.Ratios[fmt.Sprintf("steady%g.p50/rtt.p50", s.Rate)] = ratio(s.Latency.P50Ms, rtt)
			r.Ratios[fmt.Sprintf("steady%g.warmP50/rtt.p50", s.Rate)] = ratio(s.WarmLatency.P50Ms, rtt)
			r.Ratios[fmt.Sprintf("steady%g.p99/rtt.p50", s.Rate)] = ratio(s.Latency.P99Ms, rtt)
		}
		if pc := r.pacedRTT(); pc > 0 {
			r.Ratios[fmt.Sprintf("steady%g.warmP50/rtt.pacedP50", s.Rate)] = ratio(s.WarmLatency.P50Ms, pc)
		}
	}
	if rt := r.Router; rt != nil {
		r.Ratios["router.rps/minimal.rps"] = rt.RPSRatio
		r.Ratios["router.p50/minimal.p50"] = rt.P50Ratio
		r.Ratios["minimal.rps/direct.rps"] = ratio(rt.Minimal.ReqPerSec, rt.Direct.ReqPerSec)
	}
	r.Targets = r.targets(rtt)
}

func pass(ok bool) *bool { return &ok }

func (r *Report) targets(rtt float64) []Target {
	var ts []Target
	notMeasured := func(goal, why string) Target { return Target{Goal: goal, Measured: "not measured", Note: why} }
	estimated := func(measured bool) string {
		if measured {
			return ""
		}
		return "estimated from apiserver counts (no controller metrics URL)"
	}

	goal := fmt.Sprintf("pool fill ≤ %.1f × ReplicaSet fill", targetPoolVsRS)
	if v, what, ok := r.fillRatio(); ok {
		t := Target{Goal: goal, Measured: fmt.Sprintf("%.2f× (%s)", v, what), Pass: pass(v <= targetPoolVsRS)}
		if r.Pool.Size != r.RS.Size {
			t.Note = "sizes differ"
		}
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(goal, "needs rs and pool"))
	}

	goal = fmt.Sprintf("pool: ≤ %.1f controller writes per member", targetWritesPerMember)
	if r.Pool != nil {
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("%.2f", r.Pool.ControllerWritesPerMember),
			Pass: pass(r.Pool.ControllerWritesPerMember <= targetWritesPerMember), Note: estimated(r.Pool.WritesMeasured)})
	} else {
		ts = append(ts, notMeasured(goal, "needs pool"))
	}

	goal = "pool: never more than N members (max seen ≤ N)"
	if r.Pool != nil {
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("max %d of %d", r.Pool.MaxMembers, r.Pool.Size), Pass: pass(r.Pool.MaxMembers <= r.Pool.Size)})
	} else {
		ts = append(ts, notMeasured(goal, "needs pool"))
	}

	warmRun, warmFrom := r.warmRun()
	goal1 := fmt.Sprintf("claim path ≤ %.0f writes per warm claim", targetWritesPerWarmClaim)
	goal2 := fmt.Sprintf("≤ %.0f writes per warm claim including the refill", targetWritesWithRefill)
	if warmRun != nil {
		note := "claim path = (writes incl. refill − refilled members × fill writes/member) / claims"
		if e := estimated(warmRun.WritesMeasured); e != "" {
			note += "; " + e
		}
		ts = append(ts,
			Target{Goal: goal1, Measured: fmt.Sprintf("%.2f (%s)", warmRun.WritesPerClaimPath, warmFrom), Pass: pass(warmRun.WritesPerClaimPath <= targetWritesPerWarmClaim), Note: note},
			Target{Goal: goal2, Measured: fmt.Sprintf("%.2f (%s)", warmRun.WritesPerClaim, warmFrom), Pass: pass(warmRun.WritesPerClaim <= targetWritesWithRefill), Note: estimated(warmRun.WritesMeasured)})
	} else {
		ts = append(ts, notMeasured(goal1, "needs claims or steady"), notMeasured(goal2, "needs claims or steady"))
	}

	goal = fmt.Sprintf("burst: every warm claim Ready within %.0f × rtt p50", targetWarmBurstRTTs)
	if r.Claims != nil && rtt > 0 {
		limit := targetWarmBurstRTTs * rtt
		ok := r.Claims.WarmLatency.MaxMs <= limit && r.Claims.NotReady == 0
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("warm max %.0f ms vs %.0f ms (%d warm, %d not Ready)", r.Claims.WarmLatency.MaxMs, limit, r.Claims.WarmLatency.N, r.Claims.NotReady), Pass: pass(ok)})
	} else {
		ts = append(ts, notMeasured(goal, "needs rtt and claims"))
	}
	goal = "burst: all exactly-once checks pass"
	if r.Claims != nil {
		n := len(r.Claims.Violations) + len(r.Claims.PoolFill.Violations)
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("%d violations", n), Pass: pass(n == 0)})
	} else {
		ts = append(ts, notMeasured(goal, "needs claims"))
	}

	goal = fmt.Sprintf("steady %g/s: p50 ≤ %.0f × rtt p50", targetSteadyLowRate, targetSteadyP50RTTs)
	if s := r.steadyAt(targetSteadyLowRate); s != nil && rtt > 0 {
		limit := targetSteadyP50RTTs * rtt
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("p50 %.1f ms vs %.1f ms", s.Latency.P50Ms, limit), Pass: pass(s.Latency.P50Ms <= limit && s.NotReady == 0)})
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs rtt and steady at %g/s", targetSteadyLowRate)))
	}
	goal = fmt.Sprintf("steady %g/s sustained: all claims Ready, p99 ≤ %.0f ms", targetSteadyHighRate, targetSteadyHighP99Ms)
	if s := r.steadyAt(targetSteadyHighRate); s != nil {
		ok := s.NotReady == 0 && s.CreateErrors == 0 && s.Latency.P99Ms <= targetSteadyHighP99Ms && len(s.Violations) == 0
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("%d/%d Ready, p99 %.0f ms, sent at %.1f/s, %d violations", s.Created-s.NotReady, s.Claims, s.Latency.P99Ms, s.AchievedRate, len(s.Violations)), Pass: pass(ok)})
	} else {
		ts = append(ts, notMeasured(goal, fmt.Sprintf("needs steady at %g/s", targetSteadyHighRate)))
	}

	goal = fmt.Sprintf("router req/s ≥ %.1f × a minimal reverse proxy's (issue 13)", targetRouterRPS)
	goalP50 := fmt.Sprintf("router p50 ≤ %.1f × a minimal reverse proxy's (issue 13)", targetRouterP50)
	if rt := r.Router; rt != nil {
		note := fmt.Sprintf("%d clients, medians of %d rounds of %gs; access log on", rt.Clients, rt.Rounds, rt.DurationSeconds)
		ts = append(ts,
			Target{Goal: goal, Measured: fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", rt.RPSRatio, rt.Router.ReqPerSec, rt.Minimal.ReqPerSec), Pass: pass(rt.RPSRatio >= targetRouterRPS), Note: note},
			Target{Goal: goalP50, Measured: fmt.Sprintf("%.2f× (%.3f vs %.3f ms)", rt.P50Ratio, rt.Router.P50Ms, rt.Minimal.P50Ms), Pass: pass(rt.P50Ratio <= targetRouterP50), Note: note})
	} else {
		ts = append(ts, notMeasured(goal, "needs router"), notMeasured(goalP50, "needs router"))
	}

	goal = fmt.Sprintf("controller RSS with %d sandboxes ≤ %.0f MiB", targetRSSSandboxes, targetRSSMiB)
	peak, at := r.peakRSS()
	switch big := r.rssPool(); {
	case big != nil:
		v := *big.Cost.ControllerRSSPeakMB
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("peak %.1f MiB with a pool of %d", v, big.Size), Pass: pass(v <= targetRSSMiB)})
	case peak > 0:
		ts = append(ts, Target{Goal: goal, Measured: fmt.Sprintf("not at %d; peak %.1f MiB in %s", targetRSSSandboxes, peak, at),
			Note: "no scenario of this run holds 3000 sandboxes; run pool --size 3000 with the metrics URL"})
	default:
		ts = append(ts, notMeasured(goal, "needs the controller metrics URL and 3000 sandboxes"))
	}
	ts = append(ts, r.targets19(rtt)...)
	return append(ts, r.idleTargets()...)
}

// rssPool is the pool of the run holding at least targetRSSSandboxes with
// the controller's RSS read, if any.
func (r *Report) rssPool() *FillResult {
	for _, p := range []*FillResult{r.RSSPool, r.Pool} {
		if p != nil && p.Size >= targetRSSSandboxes && p.Cost.ControllerRSSPeakMB != nil {
			return p
		}
	}
	return nil
}

// warmRun is the run that isolates the warm claim path best: the lowest
// steady rate whose claims were all warm, else the burst, which mixes in
// cold claims. from describes it; nil without either.
func (r *Report) warmRun() (run *ClaimStats, from string) {
	lowest := math.Inf(1)
	for _, s := range r.Steady {
		if s.ColdLatency.N == 0 && s.Latency.N > 0 && s.Rate < lowest {
			lowest, run, from = s.Rate, &s.ClaimStats, fmt.Sprintf("steady %g/s, all warm", s.Rate)
		}
	}
	if run == nil && r.Claims != nil {
		run, from = &r.Claims.ClaimStats, fmt.Sprintf("burst, %d warm + %d cold", r.Claims.WarmLatency.N, r.Claims.ColdLatency.N)
	}
	return run, from
}

// steadyAt returns the steady run at rate, if any.
func (r *Report) steadyAt(rate float64) *SteadyResult {
	for _, s := range r.Steady {
		if s.Rate == rate {
			return s
		}
	}
	return nil
}

// peakRSS returns the highest controller RSS of the run and where.
func (r *Report) peakRSS() (float64, string) {
	var peak float64
	where := ""
	consider := func(c Cost, name string) {
		if c.ControllerRSSPeakMB != nil && *c.ControllerRSSPeakMB > peak {
			peak, where = *c.ControllerRSSPeakMB, name
		}
	}
	for _, p := range []*FillResult{r.Pool, r.RSSPool} {
		if p != nil {
			consider(p.Cost, fmt.Sprintf("pool of %d", p.Size))
		}
	}
	if r.Claims != nil {
		consider(r.Claims.TotalCost, fmt.Sprintf("claims (pool %d + %d claims)", r.Claims.Pool, r.Claims.Claims))
	}
	for _, s := range r.Steady {
		consider(s.TotalCost, fmt.Sprintf("steady %g/s (pool %d + %d claims)", s.Rate, s.Pool, s.Claims))
	}
	if r.Ramp != nil {
		for _, s := range r.Ramp.Steps {
			consider(s.TotalCost, fmt.Sprintf("ramp %g/s (pool %d + %d claims)", s.Rate, s.Pool, s.Claims))
		}
	}
	return peak, where
}
