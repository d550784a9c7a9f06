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
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Plot file names of the soak report.
const (
	plotSoakMemory     = "soak-memory.svg"
	plotSoakGoroutines = "soak-goroutines.svg"
)

// Write puts report.json, report.md and the two plots into dir.
func (r *SoakResult) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, c := range r.charts() {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return writeJSONAndMarkdown(dir, r, r.Markdown())
}

// charts plots each metric against thousands of claims created, with its
// fit drawn over the samples after warm-up.
func (r *SoakResult) charts() map[string]Chart {
	series := func(name string, get func(SoakSample) float64) Series {
		s := Series{Name: name}
		for _, x := range r.Samples {
			s.Points = append(s.Points, Point{X: float64(x.Claims) / 1000, Y: get(x)})
		}
		return s
	}
	fit := func(metric string) (Series, bool) {
		for _, sl := range r.Slopes {
			if sl.Metric != metric {
				continue
			}
			x0 := float64(r.WarmupClaims) / 1000
			x1 := x0
			for _, x := range r.Samples {
				x1 = max(x1, float64(x.Claims)/1000)
			}
			at := func(x float64) float64 { return sl.Intercept + sl.SlopePer10k*x/10 }
			return Series{Name: metric + " fit", Points: []Point{{X: x0, Y: at(x0)}, {X: x1, Y: at(x1)}}}, true
		}
		return Series{}, false
	}
	mem := Chart{Title: fmt.Sprintf("Soak: controller memory over %d claims", r.Claims.Created), XLabel: "claims created (thousands)", YLabel: "MiB"}
	mem.Series = append(mem.Series, series("RSS", func(s SoakSample) float64 { return s.RSSMiB }),
		series("heap in use", func(s SoakSample) float64 { return s.HeapMiB }))
	gor := Chart{Title: fmt.Sprintf("Soak: controller goroutines over %d claims", r.Claims.Created), XLabel: "claims created (thousands)", YLabel: "goroutines"}
	gor.Series = append(gor.Series, series("goroutines", func(s SoakSample) float64 { return s.Goroutines }),
		series("live Sandboxes", func(s SoakSample) float64 { return float64(s.LiveSandboxes) }))
	for _, m := range []string{"RSS", "heap in use"} {
		if f, ok := fit(m); ok {
			mem.Series = append(mem.Series, f)
		}
	}
	if f, ok := fit("goroutines"); ok {
		gor.Series = append(gor.Series, f)
	}
	return map[string]Chart{plotSoakMemory: mem, plotSoakGoroutines: gor}
}

// Markdown renders the soak report: verdict, the fits, the load.
func (r *SoakResult) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	r.header(&b, "sandbox-bench soak report")
	p("")
	p("**Verdict: %s** — %d of %d metrics grew beyond tolerance, %d violations, %d harness errors.", yesNo(r.Failed(), "FAIL", "PASS"),
		notFlat(r.Slopes), len(r.Slopes), len(r.Violations), len(r.Errors))
	p("")
	p("Load: %d claims at %g/s over %d warm pools of %d, against one controller process (leader election on). A sample of its /metrics every %gs%s; the fit is a least-squares line over the samples after the first %d claims (warm-up), against claims created.",
		r.Claims.Created, r.Rate, r.Pools, r.PoolSize, r.Interval, yesNo(r.GCBefore, " right after a forced GC (pprof heap?gc=1), so heap in use is the live heap", ""), r.WarmupClaims)
	p("")
	p("| metric | slope per 10k claims | tolerance | flat | min | max | samples |")
	p("|---|---|---|---|---|---|---|")
	for _, s := range r.Slopes {
		p("| %s | %+.3f %s | %.3g | %s | %.1f | %.1f | %d |", s.Metric, s.SlopePer10k, s.Unit, s.Tolerance, yesNo(s.Flat, "yes", "**no**"), s.Min, s.Max, s.Samples)
	}
	if len(r.Slopes) == 0 {
		p("| (fewer than 3 samples after warm-up: no fit) | | | | | | |")
	}
	p("")
	if n := len(r.Samples); n > 1 {
		p("Live Sandboxes (pool members and claims' Sandboxes, as the watch shows them): %d at the first sample, %d at the last; memory that grows with them is load the caches must hold, not a leak.", r.Samples[0].LiveSandboxes, r.Samples[n-1].LiveSandboxes)
		p("")
	}
	p("![memory](%s)", plotSoakMemory)
	p("")
	p("![goroutines](%s)", plotSoakGoroutines)
	c := r.Claims
	p("")
	p("Claims: %d attempted, %d created, %d refused, %d served (seen Ready), %d deleted, %d alive at the end; create → Ready p50 %.1f ms, p99 %.1f ms, max %.1f ms.",
		c.Attempted, c.Created, c.CreateErrors, c.Served, c.Deleted, c.LeftAtEnd, c.Latency.P50Ms, c.Latency.P99Ms, c.Latency.MaxMs)
	harnessErrors(&b, r.Errors)
	violationSection(&b, r.Violations, "None (binding rules at every watch event; after the load every claim Ready, every pool at its replicas, nothing without a live owner).")
	return b.String()
}

func notFlat(ss []SoakSlope) int {
	n := 0
	for _, s := range ss {
		if !s.Flat {
			n++
		}
	}
	return n
}
