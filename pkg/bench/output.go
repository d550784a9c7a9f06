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
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Plot file names inside the output directory.
const (
	plotFill          = "fill.svg"
	plotClaimsCDF     = "claims-cdf.svg"
	plotSteadyCDF     = "steady-cdf.svg"
	plotSteadyLatency = "steady-latency.svg"
)

// Write puts report.json, report.md and the plots into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	plots := r.charts()
	for _, name := range slices.Sorted(maps.Keys(plots)) {
		var b bytes.Buffer
		if err := plots[name].WriteSVG(&b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown(plots)), 0o644)
}

// charts builds the plots the data of the run allows.
func (r *Report) charts() map[string]Chart {
	out := map[string]Chart{}
	fill := Chart{Title: "Fill: Ready members over time", XLabel: "seconds since create", YLabel: "Ready"}
	if r.RS != nil {
		fill.Series = append(fill.Series, Series{Name: fmt.Sprintf("ReplicaSet %d", r.RS.Size), Points: r.RS.Curve, Step: true})
	}
	if r.Pool != nil {
		fill.Series = append(fill.Series, Series{Name: fmt.Sprintf("warm pool %d", r.Pool.Size), Points: r.Pool.Curve, Step: true})
	}
	if len(fill.Series) > 0 {
		out[plotFill] = fill
	}
	if r.Claims != nil && len(r.Claims.CDF) > 0 {
		c := Chart{Title: fmt.Sprintf("Burst of %d claims vs pool %d: create → Ready", r.Claims.Claims, r.Claims.Pool), XLabel: "latency (ms)", YLabel: "fraction of claims", YMax: 1}
		c.Series = append(c.Series, Series{Name: "all", Points: r.Claims.CDF, Step: true})
		if len(r.Claims.WarmCDF) > 0 {
			c.Series = append(c.Series, Series{Name: "warm", Points: r.Claims.WarmCDF, Step: true})
		}
		if len(r.Claims.ColdCDF) > 0 {
			c.Series = append(c.Series, Series{Name: "cold", Points: r.Claims.ColdCDF, Step: true})
		}
		out[plotClaimsCDF] = c
	}
	if len(r.Steady) > 0 {
		cdf := Chart{Title: "Steady claims: create → Ready", XLabel: "latency (ms)", YLabel: "fraction of claims", YMax: 1}
		over := Chart{Title: "Steady claims: latency by second of creation", XLabel: "second", YLabel: "latency (ms)"}
		for _, s := range r.Steady {
			cdf.Series = append(cdf.Series, Series{Name: fmt.Sprintf("%g/s", s.Rate), Points: s.CDF, Step: true})
			var p50, p99 []Point
			for _, b := range s.Buckets {
				if b.Count == 0 {
					continue
				}
				p50 = append(p50, Point{X: float64(b.Second), Y: b.P50Ms})
				p99 = append(p99, Point{X: float64(b.Second), Y: b.P99Ms})
			}
			over.Series = append(over.Series,
				Series{Name: fmt.Sprintf("%g/s p50", s.Rate), Points: p50},
				Series{Name: fmt.Sprintf("%g/s p99", s.Rate), Points: p99})
		}
		out[plotSteadyCDF], out[plotSteadyLatency] = cdf, over
	}
	return out
}

// Markdown renders the report for people: the targets first, then one
// section per scenario.
func (r *Report) Markdown(plots map[string]Chart) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# sandbox-bench report")
	p("")
	p("Run %s → %s (%s) against %s (%s, %d nodes). Controller metrics: %s.",
		r.Started.UTC().Format(time.RFC3339), r.Finished.UTC().Format("15:04:05Z"), r.Finished.Sub(r.Started).Round(time.Second),
		r.Cluster.Server, r.Cluster.ServerVersion, r.Cluster.Nodes, yesNo(r.Cluster.ControllerMetrics, "read", "not given (controller writes are estimated)"))
	if r.Cluster.ControllerMetrics {
		p("")
		p("Controller: %s.", r.Cluster.gogc(nil))
	}
	for _, n := range r.Notes {
		p("")
		p("%s", n)
	}
	if len(r.Errors) > 0 {
		p("")
		p("**Errors:**")
		for _, e := range r.Errors {
			p("- %s", e)
		}
	}

	p("")
	p("## Targets of issues #9 and #19 (and the router's of issue 13)")
	p("")
	p("| goal | measured | result | note |")
	p("|---|---|---|---|")
	for _, t := range r.Targets {
		res := "n/a"
		if t.Pass != nil {
			res = yesNo(*t.Pass, "PASS", "FAIL")
		}
		p("| %s | %s | %s | %s |", t.Goal, t.Measured, res, t.Note)
	}
	if len(r.Ratios) > 0 {
		p("")
		p("Ratios (same run): %s", r.ratioLine())
	}

	if r.Router != nil {
		routerSection(&b, r.Router)
	}
	if r.Idle != nil {
		idleSection(&b, r.Idle)
	}
	if r.RTT != nil {
		p("")
		p("## rtt: one write observed through a watch")
		p("")
		names, rows := []string{fmt.Sprintf("ConfigMap create → ADDED, back to back (%d)", r.RTT.N)}, []Summary{r.RTT.Latency}
		if pc := r.RTT.Paced; pc != nil {
			names = append(names, fmt.Sprintf("the same, one every %v (%d)", pacedRTTInterval, pc.N))
			rows = append(rows, *pc)
		}
		latencyTable(&b, names, rows)
	}
	if r.RS != nil || r.Pool != nil || r.RSSPool != nil {
		p("")
		p("## rs and pool: fill")
		p("")
		p("| scenario | size | fill (s) | controller writes / member | max members | API writes | bench writes |")
		p("|---|---|---|---|---|---|---|")
		if r.RS != nil {
			p("| ReplicaSet (kube-controller-manager) | %d | %.2f | %.2f (pods POST + status PUT) | – | %.0f | %.0f |", r.RS.Size, r.RS.FillSeconds, r.RS.ControllerWritesPerMember, r.RS.Cost.APIWritesTotal, r.RS.Cost.BenchWrites)
		}
		for _, pl := range []*FillResult{r.Pool, r.RSSPool} {
			if pl != nil {
				p("| warm pool | %d | %.2f | %.2f%s | %d | %.0f | %.0f |", pl.Size, pl.FillSeconds, pl.ControllerWritesPerMember, yesNo(pl.WritesMeasured, "", " (estimate)"), pl.MaxMembers, pl.Cost.APIWritesTotal, pl.Cost.BenchWrites)
			}
		}
		if len(r.FillRounds) > 1 {
			p("")
			p("Fill rounds, alternating (the table and the plot are the first):")
			p("")
			p("| round | ReplicaSet (s) | pool (s) | pool / ReplicaSet |")
			p("|---|---|---|---|")
			for i, fr := range r.FillRounds {
				p("| %d | %.2f | %.2f | %.2f |", i+1, fr.RSSeconds, fr.PoolSeconds, ratio(fr.PoolSeconds, fr.RSSeconds))
			}
		}
		if _, ok := plots[plotFill]; ok {
			p("")
			p("![fill curves](%s)", plotFill)
		}
		for _, pl := range []*FillResult{r.Pool, r.RSSPool} {
			if pl != nil {
				violations(&b, pl.Violations)
			}
		}
	}
	if r.Claims != nil {
		c := r.Claims
		p("")
		p("## claims: burst of %d against a pool of %d", c.Claims, c.Pool)
		p("")
		p("Pool filled in %.2fs. Created %d (%d refused), %d never Ready. All Ready %.2fs after the first create; pool whole again after %.2fs (%d members refilled, %d cold Sandboxes).",
			c.PoolFill.FillSeconds, c.Created, c.CreateErrors, c.NotReady, c.AllReadySeconds, c.RefillSeconds, c.RefillCreated, c.ColdCreated)
		p("")
		latencyTable(&b, []string{"all", "warm", "cold"}, []Summary{c.Latency, c.WarmLatency, c.ColdLatency})
		p("")
		claimWrites(&b, &c.ClaimStats)
		if _, ok := plots[plotClaimsCDF]; ok {
			p("")
			p("![claims latency CDF](%s)", plotClaimsCDF)
		}
		violations(&b, append(slices.Clone(c.PoolFill.Violations), c.Violations...))
	}
	if len(r.Steady) > 0 {
		p("")
		p("## steady: claims at a fixed rate")
		p("")
		steadyHeader(&b, "")
		for _, s := range r.Steady {
			steadyRow(&b, s, "")
		}
		for _, name := range []string{plotSteadyCDF, plotSteadyLatency} {
			if _, ok := plots[name]; ok {
				p("")
				p("![%s](%s)", strings.TrimSuffix(name, ".svg"), name)
			}
		}
		underLoad(&b, r.Steady)
		for _, s := range r.Steady {
			violations(&b, s.Violations)
		}
	}

	if len(r.WarmEnv) > 0 {
		warmEnvSection(&b, r.WarmEnv)
	}

	if r.Ramp != nil {
		rampSection(&b, r.Ramp)
	}

	p("")
	p("## Cost per scenario")
	p("")
	p("API writes are the apiserver's apiserver_request_total deltas from every client; controller figures come from its own /metrics.")
	costs := r.costs()
	for i := range costs {
		p("")
		p("### %s (%.1fs)", costs[i].name, costs[i].cost.Seconds)
		p("")
		costTable(&b, costs[i].cost)
	}
	return b.String()
}

func (r *Report) ratioLine() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Ratios)) {
		parts = append(parts, fmt.Sprintf("%s = %.2f", k, r.Ratios[k]))
	}
	return strings.Join(parts, "; ")
}

type namedCost struct {
	name string
	cost Cost
}

func (r *Report) costs() []namedCost {
	var out []namedCost
	if r.RTT != nil {
		out = append(out, namedCost{fmt.Sprintf("rtt %d", r.RTT.N), r.RTT.Cost})
	}
	if r.RS != nil {
		out = append(out, namedCost{fmt.Sprintf("rs %d", r.RS.Size), r.RS.Cost})
	}
	if r.Pool != nil {
		out = append(out, namedCost{fmt.Sprintf("pool %d: fill", r.Pool.Size), r.Pool.Cost})
	}
	if r.Claims != nil {
		out = append(out,
			namedCost{fmt.Sprintf("claims: pool %d fill", r.Claims.Pool), r.Claims.PoolFill.Cost},
			namedCost{fmt.Sprintf("claims: %d claims until all Ready", r.Claims.Claims), r.Claims.ClaimPathCost},
			namedCost{fmt.Sprintf("claims: %d claims until the pool refilled", r.Claims.Claims), r.Claims.TotalCost})
	}
	for _, s := range r.Steady {
		out = append(out, namedCost{fmt.Sprintf("steady %g/s: claims until the pool refilled", s.Rate), s.TotalCost})
	}
	for _, s := range r.WarmEnv {
		out = append(out, namedCost{fmt.Sprintf("warm env %g/s: claims until the pool refilled", s.Rate), s.TotalCost})
	}
	if r.RSSPool != nil {
		out = append(out, namedCost{fmt.Sprintf("pool %d: fill (RSS)", r.RSSPool.Size), r.RSSPool.Cost})
	}
	if r.Ramp != nil {
		for _, s := range r.Ramp.Steps {
			out = append(out, namedCost{fmt.Sprintf("ramp %g/s: claims until the pool refilled", s.Rate), s.TotalCost})
		}
	}
	return out
}

// steadyHeader and steadyRow are the table of steady runs, shared with the
// ramp's steps (extra is the ramp's verdict column).
func steadyHeader(b *strings.Builder, extra string) {
	cols := "| rate | duration | pool | sent at | created | not Ready | warm/cold | p50 ms | p90 ms | p99 ms | max ms | warm p50 ms | critical path p50 (mean) | writes/claim incl. refill | claim path (est.) | CPU ms/claim | fewest Ready members (s with none) | teardown s | violations |"
	if extra != "" {
		cols += " " + extra + " |"
	}
	fmt.Fprintln(b, cols)
	fmt.Fprintln(b, strings.Repeat("|---", strings.Count(cols, "|")-1)+"|")
}

func steadyRow(b *strings.Builder, s *SteadyResult, extra string) {
	path, cpu := "–", "–"
	if s.CriticalPath != nil {
		path = fmt.Sprintf("%g (%.2f)", s.CriticalPath.P50, s.CriticalPath.Mean)
	}
	if s.ControllerCPUMsPerClaim != nil {
		cpu = fmt.Sprintf("%.2f", *s.ControllerCPUMsPerClaim)
	}
	low := fmt.Sprintf("%d", s.PoolLowest)
	if s.PoolEmptySeconds > 0 {
		low += fmt.Sprintf(" (%.1f)", s.PoolEmptySeconds)
	}
	row := fmt.Sprintf("| %g/s | %gs | %d | %.1f/s | %d | %d | %d/%d | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %.2f | %.2f | %s | %s | %.1f | %d |",
		s.Rate, s.DurationSeconds, s.Pool, s.AchievedRate, s.Created, s.NotReady, s.WarmLatency.N, s.cold(),
		s.Latency.P50Ms, s.Latency.P90Ms, s.Latency.P99Ms, s.Latency.MaxMs, s.WarmLatency.P50Ms, path, s.WritesPerClaim, s.WritesPerClaimPath, cpu, low, s.TeardownSeconds, len(s.Violations))
	if extra != "" {
		row += " " + extra + " |"
	}
	fmt.Fprintln(b, row)
}

func rampSection(b *strings.Builder, rp *RampResult) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("")
	p("## ramp: the highest rate with p99 ≤ %.0f ms and no cold claim", rampP99Ms)
	p("")
	filled := ""
	if rp.PoolFill != nil {
		filled = fmt.Sprintf(" (filled in %.2fs)", rp.PoolFill.FillSeconds)
	}
	p("One pool of %d%s, steps of %gs at %s claims/s; before each step the pool is whole and the previous step's claims, Sandboxes and Pods are gone. A step passes when every claim was created and Ready, none cold, p99 ≤ %.0f ms, no exactly-once violation, the pool refilled and the bench sent at ≥ %.0f %% of the rate; the ramp stops after the first failing step.",
		rp.Pool, filled, rp.StepSeconds, joinRates(rp.Rates), rampP99Ms, rampMinSent*100)
	p("")
	p("**Highest passing rate: %g/s** (%s).", rp.Highest, rp.Stopped)
	p("")
	steadyHeader(b, "verdict")
	for _, s := range rp.Steps {
		steadyRow(b, s.SteadyResult, yesNo(s.Pass, "PASS", "FAIL: "+s.Why))
	}
	for _, s := range rp.Steps {
		violations(b, s.Violations)
	}
}

func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%g", r)
	}
	return strings.Join(parts, ", ")
}

func routerSection(b *strings.Builder, r *RouterResult) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("")
	p("## router: per-request overhead")
	p("")
	p("A small GET from %d keep-alive clients, closed loop, %d rounds of %gs per path (order rotated each round): straight to the upstream, through a minimal httputil.ReverseProxy process, and through a sandbox-router process (%s) resolving a real Sandbox. Figures are medians over the rounds; CPU is the proxy process's user+system time per request.",
		r.Clients, r.Rounds, r.DurationSeconds, strings.Join(r.RouterArgs, " "))
	p("")
	p("| path | req/s | p50 ms | p90 ms | p99 ms | requests | CPU µs/request |")
	p("|---|---|---|---|---|---|---|")
	for _, m := range []struct {
		name string
		m    ModeResult
	}{{"direct", r.Direct}, {"minimal proxy", r.Minimal}, {"router", r.Router}} {
		cpu := "–"
		if m.m.CPUMicrosPerRequest != nil {
			cpu = fmt.Sprintf("%.0f", *m.m.CPUMicrosPerRequest)
		}
		p("| %s | %.0f | %.3f | %.3f | %.3f | %d | %s |", m.name, m.m.ReqPerSec, m.m.P50Ms, m.m.P90Ms, m.m.P99Ms, m.m.Requests, cpu)
	}
	p("")
	p("Router / minimal proxy: req/s **%.2f×**, p50 **%.2f×** (medians of the per-round ratios). Access log lines: %d.", r.RPSRatio, r.P50Ratio, r.AccessLogLines)
	p("")
	p("| round | direct req/s | minimal req/s | router req/s | router/minimal req/s | direct p50 | minimal p50 | router p50 | router/minimal p50 |")
	p("|---|---|---|---|---|---|---|---|---|")
	for i := range r.PerRound {
		rr := &r.PerRound[i]
		p("| %d | %.0f | %.0f | %.0f | %.2f | %.3f | %.3f | %.3f | %.2f |", i+1, rr.Direct.ReqPerSec, rr.Minimal.ReqPerSec, rr.Router.ReqPerSec,
			ratio(rr.Router.ReqPerSec, rr.Minimal.ReqPerSec), rr.Direct.Latency.P50Ms, rr.Minimal.Latency.P50Ms, rr.Router.Latency.P50Ms,
			ratio(rr.Router.Latency.P50Ms, rr.Minimal.Latency.P50Ms))
	}
}

func latencyTable(b *strings.Builder, names []string, sums []Summary) {
	fmt.Fprintln(b, "| | n | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
	fmt.Fprintln(b, "|---|---|---|---|---|---|---|")
	for i, s := range sums {
		fmt.Fprintf(b, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", names[i], s.N, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, s.MeanMs)
	}
}

func claimWrites(b *strings.Builder, s *ClaimStats) {
	kind := "controller writes"
	if !s.WritesMeasured {
		kind = "estimated controller writes"
	}
	fmt.Fprintf(b, "Per claim: %.2f %s including the refill, %.2f on the claim path (estimate: refilled members charged at the fill's writes per member).\n",
		s.WritesPerClaim, kind, s.WritesPerClaimPath)
}

func costTable(b *strings.Builder, c Cost) {
	fmt.Fprintf(b, "API writes %.0f (bench's own %.0f; estimated controller %.0f)", c.APIWritesTotal, c.BenchWrites, c.EstimatedControllerWrites())
	if c.ControllerWrites != nil {
		fmt.Fprintf(b, "; controller: %.0f writes, requests by method %s, CPU %.2fs, RSS peak %.1f MiB (end %.1f MiB), 403s %.0f",
			*c.ControllerWrites, methodLine(c.ControllerRequests), *c.ControllerCPUSec, *c.ControllerRSSPeakMB, *c.ControllerRSSEndMB, *c.ControllerForbidden)
		if len(c.ControllerConversionReviews) > 0 {
			fmt.Fprintf(b, ", conversion reviews by path %s", methodLine(c.ControllerConversionReviews))
		}
	}
	fmt.Fprintln(b, ".")
	if len(c.ProcessCPUSec) > 0 {
		fmt.Fprintf(b, "\nCPU of the machine's processes: %s.\n", byShare(c.ProcessCPUSec, "%.2f s"))
	}
	if len(c.APIWrites) == 0 {
		return
	}
	fmt.Fprintln(b)
	fmt.Fprintln(b, "| resource | verb | writes | server ms (mean) |")
	fmt.Fprintln(b, "|---|---|---|---|")
	keys := slices.SortedFunc(maps.Keys(c.APIWrites), func(a, z string) int {
		if d := c.APIWrites[z] - c.APIWrites[a]; d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, z)
	})
	for _, k := range keys {
		res, verb, _ := strings.Cut(k, " ")
		ms := "–"
		if v, ok := c.APIWriteServerMs[k]; ok {
			ms = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(b, "| %s | %s | %.0f | %s |\n", res, verb, c.APIWrites[k], ms)
	}
}

func methodLine(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func violations(b *strings.Builder, vs []Violation) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n**%d exactly-once violations:**\n\n", len(vs))
	for _, v := range vs {
		fmt.Fprintf(b, "- %s at %.2fs: %s\n", v.Rule, v.At.Seconds(), v.Detail)
	}
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// warmEnvSection is the steady runs where every other claim set env: the
// run's row as in the steady table, then plain and env claims side by
// side, and their ratios (env/plain; 1.00 is the target).
func warmEnvSection(b *strings.Builder, runs []*SteadyResult) {
	fmt.Fprintln(b)
	fmt.Fprintln(b, "## warm env: every other claim sets two env variables (issue 17)")
	fmt.Fprintln(b)
	fmt.Fprintln(b, "The template opts in to warm env; both kinds run interleaved against one pool. Writes per claim are run totals (they cannot be split by kind); the critical path is counted per claim.")
	fmt.Fprintln(b)
	steadyHeader(b, "")
	for _, s := range runs {
		steadyRow(b, s, "")
	}
	fmt.Fprintln(b)
	fmt.Fprintln(b, "| rate | claims | Ready | cold | warm p50 ms | warm p99 ms | critical path p50 (mean) |")
	fmt.Fprintln(b, "|---|---|---|---|---|---|---|")
	for _, s := range runs {
		sp := s.EnvSplit
		if sp == nil {
			continue
		}
		for _, c := range []struct {
			name string
			c    ClaimClass
		}{{"plain", sp.Plain}, {"with env", sp.Env}} {
			path := "–"
			if c.c.CriticalPath != nil {
				path = fmt.Sprintf("%g (%.2f)", c.c.CriticalPath.P50, c.c.CriticalPath.Mean)
			}
			fmt.Fprintf(b, "| %g/s | %s | %d | %d | %.1f | %.1f | %s |\n", s.Rate, c.name, c.c.Ready, c.c.Cold, c.c.WarmLatency.P50Ms, c.c.WarmLatency.P99Ms, path)
		}
	}
	for _, s := range runs {
		sp := s.EnvSplit
		if sp == nil || sp.Plain.WarmLatency.P50Ms == 0 || sp.Plain.WarmLatency.P99Ms == 0 {
			continue
		}
		line := fmt.Sprintf("%g/s, env/plain: warm p50 %.2f, warm p99 %.2f", s.Rate,
			sp.Env.WarmLatency.P50Ms/sp.Plain.WarmLatency.P50Ms, sp.Env.WarmLatency.P99Ms/sp.Plain.WarmLatency.P99Ms)
		if sp.Plain.CriticalPath != nil && sp.Env.CriticalPath != nil && sp.Plain.CriticalPath.Mean > 0 {
			line += fmt.Sprintf(", critical path mean %.2f", sp.Env.CriticalPath.Mean/sp.Plain.CriticalPath.Mean)
		}
		fmt.Fprintln(b)
		fmt.Fprintln(b, line)
	}
	for _, s := range runs {
		violations(b, s.Violations)
	}
}

// underLoad gives, per steady run, the rtt timed under the run's own load
// and what a claim cost every process on the machine: on two shared cores
// the API server's and etcd's CPU sets the latency of each write as much
// as the controller's own.
func underLoad(b *strings.Builder, runs []*SteadyResult) {
	for _, s := range runs {
		if l := s.LoadedRTT; l != nil {
			fmt.Fprintf(b, "\n%g/s: rtt under the run's load p50 %.2f ms, p99 %.2f ms (%d round trips while the claims were sent): warm p50 = **%.1f ×** it.\n",
				s.Rate, l.P50Ms, l.P99Ms, l.N, ratio(s.WarmLatency.P50Ms, l.P50Ms))
		}
		if len(s.ProcessCPUMsPerClaim) > 0 {
			fmt.Fprintf(b, "\n%g/s: CPU per claim incl. the refill, every process on the machine: **%.1f ms** (%s).\n",
				s.Rate, Total(s.ProcessCPUMsPerClaim), byShare(s.ProcessCPUMsPerClaim, "%.1f ms"))
		}
		if len(s.PassesPerClaim) > 0 {
			fmt.Fprintf(b, "\n%g/s: the controller's passes per claim incl. the refill: %s.\n",
				s.Rate, byShare(s.PassesPerClaim, "%.2f"))
		}
	}
}

// byShare lists m's entries, largest first, each value in format.
func byShare(m map[string]float64, format string) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, z string) int {
		if m[a] != m[z] {
			if m[a] > m[z] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, z)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+fmt.Sprintf(format, m[k]))
	}
	return strings.Join(parts, ", ")
}
