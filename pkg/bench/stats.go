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
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies in milliseconds, the unit every
// table and plot of the report uses.
type Summary struct {
	N      int     `json:"n"`
	MinMs  float64 `json:"minMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
	MeanMs float64 `json:"meanMs"`
}

// Percentile returns the p-th percentile (0..100) of sorted by the
// nearest-rank method: always a value that was measured, so a p99 of 200
// samples is the 198th, never an interpolation between two runs.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize computes the Summary of durations; the input is not modified.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	ms := Millis(ds)
	slices.Sort(ms)
	var sum float64
	for _, v := range ms {
		sum += v
	}
	return Summary{
		N:      len(ms),
		MinMs:  ms[0],
		P50Ms:  Percentile(ms, 50),
		P90Ms:  Percentile(ms, 90),
		P99Ms:  Percentile(ms, 99),
		MaxMs:  ms[len(ms)-1],
		MeanMs: round3(sum / float64(len(ms))),
	}
}

// Millis converts durations to milliseconds with microsecond resolution.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = round3(float64(d.Microseconds()) / 1000)
	}
	return out
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Point is one (x, y) sample of a curve.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// CDF returns the empirical distribution of values as a step curve: for
// each distinct value x, the fraction (0..1] of samples <= x. The first
// point is (min, 0) so a plotted curve starts on the axis.
func CDF(values []float64) []Point {
	if len(values) == 0 {
		return nil
	}
	s := slices.Clone(values)
	slices.Sort(s)
	n := float64(len(s))
	out := []Point{{X: s[0], Y: 0}}
	for i, v := range s {
		// Only the last of equal values carries the step's height.
		if i+1 < len(s) && s[i+1] == v {
			continue
		}
		out = append(out, Point{X: v, Y: float64(i+1) / n})
	}
	return out
}

// Bucket is the latency summary of the samples whose start fell into one
// second of a run.
type Bucket struct {
	Second int     `json:"second"`
	Count  int     `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// Timed is one latency sample and when its operation started, relative to
// the start of the run.
type Timed struct {
	At      time.Duration
	Latency time.Duration
}

// PerSecond groups samples by the second their operation started in, so a
// controller that falls behind shows as latencies growing over time. Empty
// seconds inside the run are kept with Count 0 so plots keep their x axis.
func PerSecond(samples []Timed) []Bucket {
	if len(samples) == 0 {
		return nil
	}
	bySec := map[int][]time.Duration{}
	last := 0
	for _, s := range samples {
		sec := max(int(s.At/time.Second), 0)
		bySec[sec] = append(bySec[sec], s.Latency)
		last = max(last, sec)
	}
	out := make([]Bucket, 0, last+1)
	for sec := 0; sec <= last; sec++ {
		b := Bucket{Second: sec}
		if ds := bySec[sec]; len(ds) > 0 {
			sum := Summarize(ds)
			b.Count, b.P50Ms, b.P99Ms, b.MaxMs = sum.N, sum.P50Ms, sum.P99Ms, sum.MaxMs
		}
		out = append(out, b)
	}
	return out
}

// Curve records a count over time (ready members of a pool, Ready Pods of
// a ReplicaSet), one point per change, relative to a start time.
type Curve struct {
	start  time.Time
	points []Point
}

// NewCurve starts a curve at start with value 0.
func NewCurve(start time.Time) *Curve {
	return &Curve{start: start, points: []Point{{X: 0, Y: 0}}}
}

// Set records value v at time at, dropping repeats so the curve stays small.
func (c *Curve) Set(at time.Time, v int) {
	if n := len(c.points); n > 0 && c.points[n-1].Y == float64(v) {
		return
	}
	c.points = append(c.points, Point{X: round3(at.Sub(c.start).Seconds()), Y: float64(v)})
}

// Points returns the recorded points (seconds, value).
func (c *Curve) Points() []Point { return slices.Clone(c.points) }

// TimeTo returns the first time the curve reached at least v, and false if
// it never did.
func (c *Curve) TimeTo(v int) (time.Duration, bool) {
	for _, p := range c.points {
		if p.Y >= float64(v) {
			return time.Duration(p.X * float64(time.Second)), true
		}
	}
	return 0, false
}

// Low returns the lowest value the curve held between from and to, and
// for how long within them it held zero (a pool with no Ready member).
func (c *Curve) Low(from, to time.Time) (lowest int, zero time.Duration) {
	lo, hi := from.Sub(c.start).Seconds(), to.Sub(c.start).Seconds()
	// The value in effect at from is the last point at or before it.
	v, at := c.points[0].Y, lo
	i := 0
	for ; i < len(c.points) && c.points[i].X <= lo; i++ {
		v = c.points[i].Y
	}
	least, empty := v, 0.0
	for ; i < len(c.points) && c.points[i].X <= hi; i++ {
		if v == 0 {
			empty += c.points[i].X - at
		}
		v, at = c.points[i].Y, c.points[i].X
		least = min(least, v)
	}
	if v == 0 && hi > at {
		empty += hi - at
	}
	return int(least), time.Duration(empty * float64(time.Second))
}

// LastReached returns when the curve last rose to at least v from below:
// after a dip (claims taking pool members), the moment it was whole again.
func (c *Curve) LastReached(v int) (time.Duration, bool) {
	for i := len(c.points) - 1; i >= 0; i-- {
		p := c.points[i]
		if p.Y < float64(v) {
			return 0, false
		}
		if i == 0 || c.points[i-1].Y < float64(v) {
			return time.Duration(p.X * float64(time.Second)), true
		}
	}
	return 0, false
}
