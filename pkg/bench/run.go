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

// SteadySpec is one steady run: rate claims per second for Duration
// against a pool of Pool.
type SteadySpec struct {
	Rate     float64
	Duration time.Duration
	Pool     int
}

// ParseSteadySpecs parses "RATE:DURATION[:POOL],..." such as
// "10:30s:50,45:20s:225". Without POOL the pool holds five seconds of
// claims (at least 20): enough that a controller refilling at the claim
// rate never runs dry, small enough to fill quickly.
func ParseSteadySpecs(s string) ([]SteadySpec, error) {
	var out []SteadySpec
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("steady run %q: want RATE:DURATION[:POOL]", part)
		}
		rate, err := strconv.ParseFloat(f[0], 64)
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("steady run %q: bad rate", part)
		}
		d, err := time.ParseDuration(f[1])
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("steady run %q: bad duration", part)
		}
		spec := SteadySpec{Rate: rate, Duration: d, Pool: DefaultSteadyPool(rate)}
		if len(f) == 3 {
			if spec.Pool, err = strconv.Atoi(f[2]); err != nil || spec.Pool <= 0 {
				return nil, fmt.Errorf("steady run %q: bad pool size", part)
			}
		}
		out = append(out, spec)
	}
	return out, nil
}

// DefaultSteadyPool is the pool for a steady rate: five seconds of claims.
func DefaultSteadyPool(rate float64) int { return max(20, int(rate*5)) }

// Plan says which scenarios an 'all' run does; zero sizes skip one.
type Plan struct {
	RTT  int
	RS   int
	Pool int
	// FillRounds is how many times the ReplicaSet and the pool are filled,
	// alternating (RS, pool, RS, pool, …); the fill rows take the median
	// of the rounds' ratios. Below 2 it is one round.
	FillRounds int
	ClaimsPool int
	Claims     int
	Steady     []SteadySpec
	// WarmEnv are steady runs where every other claim sets env
	// (SteadyWarmEnv); empty skips.
	WarmEnv []SteadySpec
	// RSSPool is a pool filled for the controller's RSS with that many
	// Sandboxes (issue 19: 3000); 0 skips.
	RSSPool int
	// Ramp runs the ramp scenario; nil skips it.
	Ramp *RampSpec
	// Router runs the router overhead scenario; nil skips it.
	Router *RouterSpec
	// Idle runs the idle activity-tracking scenario; nil skips it.
	Idle *IdleSpec
}

// Cluster describes what was measured.
type Cluster struct {
	Server        string `json:"server"`
	ServerVersion string `json:"serverVersion"`
	Nodes         int    `json:"nodes"`
	// ControllerMetrics says whether the controller's /metrics were read
	// (its writes, RSS and CPU); without them writes are estimated.
	ControllerMetrics bool `json:"controllerMetrics"`
	// ControllerGOGC is the GC target the controller runs with (its
	// go_gc_gogc_percent), nil when not read.
	ControllerGOGC *float64 `json:"controllerGogc,omitempty"`
	// ControllerGOGCEnv is GOGC in the controller's environment as its
	// launcher reported it: "unset", a value, or "" when not told.
	ControllerGOGCEnv string `json:"controllerGogcEnv,omitempty"`
}

// Report is everything one run measured; report.json is its JSON form.
type Report struct {
	Started  time.Time  `json:"started"`
	Finished time.Time  `json:"finished"`
	Cluster  Cluster    `json:"cluster"`
	RTT      *RTTResult `json:"rtt,omitempty"`
	// FillRounds are the fill times of every round of RS and pool when
	// there was more than one; RS and Pool are the first round's.
	FillRounds []FillRound     `json:"fillRounds,omitempty"`
	RS         *FillResult     `json:"rs,omitempty"`
	Pool       *FillResult     `json:"pool,omitempty"`
	Claims     *ClaimsResult   `json:"claims,omitempty"`
	Steady     []*SteadyResult `json:"steady,omitempty"`
	WarmEnv    []*SteadyResult `json:"warmEnv,omitempty"`
	RSSPool    *FillResult     `json:"rssPool,omitempty"`
	Ramp       *RampResult     `json:"ramp,omitempty"`
	Router     *RouterResult   `json:"router,omitempty"`
	Idle       *IdleResult     `json:"idle,omitempty"`
	// Ratios relate the scenarios of this run to each other; on a shared
	// 2-core machine they are steadier than absolute figures.
	Ratios  map[string]float64 `json:"ratios"`
	Targets []Target           `json:"targets"`
	// Notes are what the caller knows about the setup (flags of the
	// components), printed under the title.
	Notes  []string `json:"notes,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Describe fills the cluster section.
func (e *Env) Describe(ctx context.Context, host string) Cluster {
	c := Cluster{Server: host, ControllerMetrics: e.Ctrl != nil}
	if e.Ctrl != nil {
		if snap, err := e.Ctrl.Snapshot(ctx); err == nil {
			c.ControllerGOGC = snap.GOGCPercent
		}
	}
	if v, err := e.Kube.Discovery().ServerVersion(); err == nil {
		c.ServerVersion = v.GitVersion
	}
	if nodes, err := e.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		c.Nodes = len(nodes.Items)
	}
	return c
}

// Run runs the scenarios of plan in order, cheapest first, and keeps going
// after a failed one: a partial report still says something.
func (e *Env) Run(ctx context.Context, r *Report, plan Plan) {
	fail := func(name string, err error) {
		e.Progress.Logf("%s failed: %v", name, err)
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", name, err))
	}
	var err error
	if plan.Router != nil {
		// First: it needs one sandbox and a quiet machine, which the
		// scenarios below leave behind them only after a while.
		if r.Router, err = e.Router(ctx, *plan.Router); err != nil {
			fail("router", err)
		}
	}
	if plan.Idle != nil && ctx.Err() == nil {
		if r.Idle, err = e.Idle(ctx, *plan.Idle); err != nil {
			fail("idle", err)
		}
	}
	if plan.RTT > 0 && ctx.Err() == nil {
		if r.RTT, err = e.RTT(ctx, plan.RTT); err != nil {
			fail("rtt", err)
		}
	}
	if plan.RS > 0 && ctx.Err() == nil {
		if r.RS, err = e.ReplicaSet(ctx, plan.RS); err != nil {
			fail("rs", err)
		}
	}
	if plan.Pool > 0 && ctx.Err() == nil {
		if r.Pool, err = e.Pool(ctx, plan.Pool); err != nil {
			fail("pool", err)
		}
	}
	if plan.FillRounds > 1 && r.RS != nil && r.Pool != nil {
		r.FillRounds = []FillRound{{RSSeconds: r.RS.FillSeconds, PoolSeconds: r.Pool.FillSeconds}}
		for range plan.FillRounds - 1 {
			if ctx.Err() != nil {
				break
			}
			rs, err := e.ReplicaSet(ctx, plan.RS)
			if err != nil {
				fail("rs (another round)", err)
				break
			}
			pool, err := e.Pool(ctx, plan.Pool)
			if err != nil {
				fail("pool (another round)", err)
				break
			}
			r.FillRounds = append(r.FillRounds, FillRound{RSSeconds: rs.FillSeconds, PoolSeconds: pool.FillSeconds})
		}
	}
	if plan.RSSPool > 0 && ctx.Err() == nil {
		if r.RSSPool, err = e.Pool(ctx, plan.RSSPool); err != nil {
			fail("rss pool", err)
		}
	}
	if plan.ClaimsPool > 0 && plan.Claims > 0 && ctx.Err() == nil {
		if r.Claims, err = e.Claims(ctx, plan.ClaimsPool, plan.Claims); err != nil {
			fail("claims", err)
		}
	}
	steady := func(specs []SteadySpec, what string, run func(context.Context, float64, time.Duration, int) (*SteadyResult, error)) []*SteadyResult {
		var out []*SteadyResult
		for _, s := range specs {
			if ctx.Err() != nil {
				break
			}
			res, err := run(ctx, s.Rate, s.Duration, s.Pool)
			if err != nil {
				fail(fmt.Sprintf("%s %g/s", what, s.Rate), err)
				continue
			}
			out = append(out, res)
		}
		return out
	}
	r.Steady = steady(plan.Steady, "steady", e.Steady)
	r.WarmEnv = steady(plan.WarmEnv, "warm env", e.SteadyWarmEnv)
	if plan.Ramp != nil && ctx.Err() == nil {
		// Last: it runs until the machine gives up.
		if r.Ramp, err = e.Ramp(ctx, *plan.Ramp); err != nil {
			fail("ramp", err)
		}
	}
	e.Progress.Scenario("")
}
