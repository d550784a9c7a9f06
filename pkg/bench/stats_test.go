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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := map[string]struct {
		sorted []float64
		p      float64
		want   float64
	}{
		"empty":              {nil, 50, 0},
		"single":             {[]float64{7}, 99, 7},
		"p50 of 1..100":      {hundred, 50, 50},
		"p90 of 1..100":      {hundred, 90, 90},
		"p99 of 1..100":      {hundred, 99, 99},
		"p100 is the max":    {hundred, 100, 100},
		"p0 is the min":      {hundred, 0, 1},
		"nearest rank, even": {[]float64{1, 2, 3, 4}, 50, 2},
		"nearest rank, up":   {[]float64{1, 2, 3, 4}, 51, 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ds := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	want := Summary{N: 4, MinMs: 1, P50Ms: 2, P90Ms: 4, P99Ms: 4, MaxMs: 4, MeanMs: 2.5}
	if diff := cmp.Diff(want, Summarize(ds)); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if ds[0] != 4*time.Millisecond {
		t.Error("Summarize reordered its input")
	}
	if diff := cmp.Diff(Summary{}, Summarize(nil)); diff != "" {
		t.Errorf("empty (-want,+got):\n%s", diff)
	}
}

func TestCDF(t *testing.T) {
	got := CDF([]float64{3, 1, 2, 2})
	want := []Point{{1, 0}, {1, 0.25}, {2, 0.75}, {3, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if CDF(nil) != nil {
		t.Error("CDF(nil) should be nil")
	}
	// Monotone in both coordinates and ending at 1.
	vals := []float64{5, 9, 1, 1, 7, 3, 3, 3}
	c := CDF(vals)
	for i := 1; i < len(c); i++ {
		if c[i].X < c[i-1].X || c[i].Y < c[i-1].Y {
			t.Fatalf("not monotone at %d: %v", i, c)
		}
	}
	if c[len(c)-1].Y != 1 {
		t.Errorf("last point %v, want y=1", c[len(c)-1])
	}
}

func TestPerSecond(t *testing.T) {
	ms := time.Millisecond
	got := PerSecond([]Timed{
		{At: 100 * ms, Latency: 10 * ms},
		{At: 900 * ms, Latency: 30 * ms},
		{At: 2500 * ms, Latency: 50 * ms},
	})
	want := []Bucket{
		{Second: 0, Count: 2, P50Ms: 10, P99Ms: 30, MaxMs: 30},
		{Second: 1},
		{Second: 2, Count: 1, P50Ms: 50, P99Ms: 50, MaxMs: 50},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}

func TestCurve(t *testing.T) {
	start := time.Now()
	c := NewCurve(start)
	c.Set(start.Add(time.Second), 5)
	c.Set(start.Add(1500*time.Millisecond), 5) // a repeat is dropped
	c.Set(start.Add(2*time.Second), 10)
	c.Set(start.Add(3*time.Second), 4) // claims took members
	c.Set(start.Add(4*time.Second), 10)
	if diff := cmp.Diff([]Point{{0, 0}, {1, 5}, {2, 10}, {3, 4}, {4, 10}}, c.Points()); diff != "" {
		t.Errorf("points (-want,+got):\n%s", diff)
	}
	if d, ok := c.TimeTo(10); !ok || d != 2*time.Second {
		t.Errorf("TimeTo(10) = %v, %v; want 2s", d, ok)
	}
	if d, ok := c.LastReached(10); !ok || d != 4*time.Second {
		t.Errorf("LastReached(10) = %v, %v; want 4s", d, ok)
	}
	if _, ok := c.TimeTo(11); ok {
		t.Error("TimeTo(11) reached")
	}
	c.Set(start.Add(5*time.Second), 9)
	if _, ok := c.LastReached(10); ok {
		t.Error("LastReached(10) after a dip at the end")
	}
}

func TestCurveLow(t *testing.T) {
	start := time.Now()
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	c := NewCurve(start)
	c.Set(at(1), 10) // full
	c.Set(at(3), 6)  // claims take members
	c.Set(at(4), 0)  // drained
	c.Set(at(5.5), 3)
	c.Set(at(6), 0) // drained again
	c.Set(at(6.5), 10)
	for _, tc := range []struct {
		name       string
		from, to   float64
		wantLowest int
		wantZero   time.Duration
	}{
		{"whole run", 2, 8, 0, 2 * time.Second},
		{"before the dip", 1.5, 2.9, 10, 0},
		{"the value in effect at from counts", 3.5, 3.9, 6, 0},
		{"window ends while empty", 2, 4.5, 0, 500 * time.Millisecond},
		{"window starts while empty", 4.5, 5.5, 0, time.Second},
		{"empty window", 5, 5, 0, 0},
		{"empty window on a full pool", 7, 7, 10, 0},
	} {
		lowest, zero := c.Low(at(tc.from), at(tc.to))
		if lowest != tc.wantLowest || zero != tc.wantZero {
			t.Errorf("%s: Low(%g, %g) = %d, %v; want %d, %v", tc.name, tc.from, tc.to, lowest, zero, tc.wantLowest, tc.wantZero)
		}
	}
}
