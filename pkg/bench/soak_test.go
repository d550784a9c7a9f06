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
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLeastSquares(t *testing.T) {
	tests := map[string]struct {
		xs, ys           []float64
		slope, intercept float64
	}{
		"exact line":   {xs: []float64{0, 1, 2, 3}, ys: []float64{5, 7, 9, 11}, slope: 2, intercept: 5},
		"noise around": {xs: []float64{0, 1, 2, 3}, ys: []float64{1, 3, 1, 3}, slope: 0.4, intercept: 1.4},
		"one x only":   {xs: []float64{2, 2}, ys: []float64{1, 3}, slope: 0, intercept: 2},
		"empty":        {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, i := leastSquares(tc.xs, tc.ys)
			if math.Abs(s-tc.slope) > 1e-9 || math.Abs(i-tc.intercept) > 1e-9 {
				t.Errorf("got slope %g intercept %g, want %g %g", s, i, tc.slope, tc.intercept)
			}
		})
	}
}

// soakSamples makes a sample every 500 claims up to n: RSS and heap grow
// by perClaim MiB per claim after a warm-up jump, goroutines stay at 300.
func soakSamples(n int, perClaimMiB float64) []SoakSample {
	var out []SoakSample
	for c := 0; c <= n; c += 500 {
		warm := 0.0
		if c >= 1000 {
			warm = 20 // caches filled in the first thousand claims
		}
		out = append(out, SoakSample{Claims: c, RSSMiB: 60 + warm + perClaimMiB*float64(c),
			HeapMiB: 20 + warm + perClaimMiB*float64(c), Goroutines: 300})
	}
	return out
}

func TestFitSoak(t *testing.T) {
	tol := SoakTolerance{RSSMiB: 2, HeapMiB: 1, Goroutines: 2}
	// Flat after warm-up: the jump before 1000 claims is left out.
	for _, s := range fitSoak(soakSamples(20000, 0), 1000, tol) {
		if !s.Flat || s.SlopePer10k != 0 {
			t.Errorf("%s: slope %g flat %v; want 0, flat", s.Metric, s.SlopePer10k, s.Flat)
		}
	}
	// Counting the warm-up would have called the jump growth.
	for _, s := range fitSoak(soakSamples(20000, 0), 0, tol) {
		if s.Metric == "heap in use" && s.Flat {
			t.Errorf("with warm-up in the fit, the heap jump was called flat (slope %g)", s.SlopePer10k)
		}
	}
	// A leak of 1.5 KiB per claim: 14.6 MiB per 10k claims.
	leak := 1.5 / 1024
	for _, s := range fitSoak(soakSamples(20000, leak), 1000, tol) {
		want := leak * 10000
		if s.Metric == "goroutines" {
			want = 0
		}
		if math.Abs(s.SlopePer10k-want) > 0.01 || s.Flat != (want == 0) {
			t.Errorf("%s: slope %g flat %v; want %g", s.Metric, s.SlopePer10k, s.Flat, want)
		}
	}
	if got := fitSoak(soakSamples(1000, 0), 1000, tol); got != nil {
		t.Errorf("fit over fewer than 3 samples: %v", got)
	}
}

func TestSoakResultWrite(t *testing.T) {
	r := &SoakResult{Samples: soakSamples(5000, 0), WarmupClaims: 1000, Interval: 10}
	r.Claims.Created = 5000
	r.Slopes = fitSoak(r.Samples, 1000, SoakTolerance{RSSMiB: 2, HeapMiB: 1, Goroutines: 2})
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{plotSoakMemory, plotSoakGoroutines} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		root, elements := wellFormed(t, b)
		// Two metrics and two fits, or goroutines, live Sandboxes and a
		// fit: a polyline each.
		if want := map[string]int{plotSoakMemory: 4, plotSoakGoroutines: 3}[name]; root != "svg" || elements["polyline"] != want {
			t.Errorf("%s: root %s, %d polylines, want svg and %d", name, root, elements["polyline"], want)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("**Verdict: PASS**")) || !strings.Contains(string(md), "| heap in use | +0.000 MiB | 1 | yes |") {
		t.Errorf("report.md lacks the verdict or the heap row:\n%s", md)
	}
	if r.Failed() {
		t.Error("a flat soak failed")
	}
	r.Slopes[1].Flat = false
	if !r.Failed() {
		t.Error("a soak with a growing heap passed")
	}
}
