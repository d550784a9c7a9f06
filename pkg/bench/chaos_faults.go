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
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// Fault kinds.
const (
	// FaultControllerKill is a SIGKILL of the one replica of ModeSingle,
	// started again after a random 0 to RestartDelay.
	FaultControllerKill = "controller-kill"
	// FaultLeaderKill is a SIGKILL of the elected leader of ModeLeader,
	// started again the same way; the follower must take over.
	FaultLeaderKill = "leader-kill"
	// FaultModeSwitch kills every replica and starts those of the next
	// phase's mode.
	FaultModeSwitch = "mode-switch"
	// FaultAPIServerRestart and FaultEtcdRestart SIGKILL the component and
	// start it again from its recorded command line (same data, certs,
	// ports).
	FaultAPIServerRestart = "apiserver-restart"
	FaultEtcdRestart      = "etcd-restart"
)

// Phase is one stretch of the chaos schedule with one controller mode.
type Phase struct {
	Mode     string
	Duration time.Duration
}

// ParsePhases reads "single:60s,leader:60s"; the schedule cycles through
// the phases until the load is done.
func ParsePhases(s string) ([]Phase, error) {
	var out []Phase
	for part := range strings.SplitSeq(s, ",") {
		mode, dur, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("phase %q: want MODE:DURATION", part)
		}
		if mode != ModeSingle && mode != ModeLeader {
			return nil, fmt.Errorf("phase %q: mode must be %s or %s", part, ModeSingle, ModeLeader)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("phase %q: bad duration", part)
		}
		out = append(out, Phase{Mode: mode, Duration: d})
	}
	if len(out) == 0 {
		return nil, errors.New("no phases")
	}
	return out, nil
}

// FaultSchedule says which faults are injected how often; an interval of 0
// turns that kind off.
type FaultSchedule struct {
	Phases []Phase
	// KillEvery applies in ModeSingle, LeaderKillEvery in ModeLeader;
	// both counted from the phase start.
	KillEvery       time.Duration
	LeaderKillEvery time.Duration
	APIServerEvery  time.Duration
	EtcdEvery       time.Duration
	// RestartDelay bounds the random pause between a kill and the restart.
	RestartDelay time.Duration
}

// Fault is one injected fault.
type Fault struct {
	Kind      string  `json:"kind"`
	AtSeconds float64 `json:"atSeconds"`
	Target    string  `json:"target"`
	// RecoverySeconds runs from the kill to the first claim Ready among
	// those whose create was sent after it; nil when none became Ready.
	RecoverySeconds *float64 `json:"recoverySeconds,omitempty"`

	at time.Time
}

// injector runs a FaultSchedule against a cluster's state directory and a
// controllerSet, one fault at a time.
type injector struct {
	sched FaultSchedule
	dir   string
	ctrl  *controllerSet
	rng   *rand.Rand
	start time.Time
	logf  func(string, ...any)

	mu     sync.Mutex
	faults []Fault
	errs   []string
}

func (in *injector) record(kind, target string, at time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = append(in.faults, Fault{Kind: kind, AtSeconds: round3(at.Sub(in.start).Seconds()), Target: target, at: at})
}

func (in *injector) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	in.logf("%s", msg)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.errs = append(in.errs, msg)
}

func (in *injector) delay() time.Duration {
	if in.sched.RestartDelay <= 0 {
		return 0
	}
	return time.Duration(in.rng.Int64N(int64(in.sched.RestartDelay) + 1))
}

// run injects faults until ctx ends. The first phase's mode must already
// run.
func (in *injector) run(ctx context.Context) {
	s := in.sched
	phase := 0
	now := time.Now()
	phaseEnd := now.Add(s.Phases[0].Duration)
	next := map[string]time.Time{}
	arm := func(kind string, every time.Duration, from time.Time) {
		if every > 0 {
			next[kind] = from.Add(every)
		} else {
			delete(next, kind)
		}
	}
	armPhase := func(from time.Time) {
		mode := s.Phases[phase].Mode
		arm(FaultControllerKill, map[bool]time.Duration{true: s.KillEvery}[mode == ModeSingle], from)
		arm(FaultLeaderKill, map[bool]time.Duration{true: s.LeaderKillEvery}[mode == ModeLeader], from)
	}
	armPhase(now)
	arm(FaultAPIServerRestart, s.APIServerEvery, now)
	arm(FaultEtcdRestart, s.EtcdEvery, now)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		if now.After(phaseEnd) {
			prev := s.Phases[phase].Mode
			phase = (phase + 1) % len(s.Phases)
			if mode := s.Phases[phase].Mode; mode != prev {
				at := time.Now()
				killed, err := in.ctrl.setMode(mode)
				if err != nil {
					in.fail("switching to mode %s: %v", mode, err)
				} else if killed {
					in.record(FaultModeSwitch, prev+"→"+mode, at)
				}
				in.logf("phase %s for %s", mode, s.Phases[phase].Duration)
			}
			now = time.Now()
			phaseEnd = now.Add(s.Phases[phase].Duration)
			armPhase(now)
		}
		// The kind most overdue goes first; each reschedules from when it
		// finished, so a slow fault never causes a burst of catch-ups.
		kinds := make([]string, 0, len(next))
		for k, t := range next {
			if !now.Before(t) {
				kinds = append(kinds, k)
			}
		}
		sort.Slice(kinds, func(i, j int) bool { return next[kinds[i]].Before(next[kinds[j]]) })
		if len(kinds) == 0 {
			continue
		}
		kind := kinds[0]
		in.inject(ctx, kind)
		every := map[string]time.Duration{FaultControllerKill: s.KillEvery, FaultLeaderKill: s.LeaderKillEvery,
			FaultAPIServerRestart: s.APIServerEvery, FaultEtcdRestart: s.EtcdEvery}[kind]
		arm(kind, every, time.Now())
	}
}

func (in *injector) inject(ctx context.Context, kind string) {
	switch kind {
	case FaultControllerKill:
		at := time.Now()
		killed, err := in.ctrl.kill(0, in.delay())
		if err != nil {
			in.fail("%s: %v", kind, err)
		}
		if killed {
			in.record(kind, in.ctrl.spec.name(0), at)
		}
	case FaultLeaderKill:
		// During a failover nobody leads yet; wait for the new leader, as
		// killing a follower tests nothing.
		var leader int
		deadline := time.Now().Add(60 * time.Second)
		for leader = in.ctrl.leader(ctx); leader < 0 && time.Now().Before(deadline) && ctx.Err() == nil; leader = in.ctrl.leader(ctx) {
			time.Sleep(200 * time.Millisecond)
		}
		if leader < 0 {
			in.fail("%s: no replica led within 60s", kind)
			return
		}
		at := time.Now()
		killed, err := in.ctrl.kill(leader, in.delay())
		if err != nil {
			in.fail("%s: %v", kind, err)
		}
		if killed {
			in.record(kind, in.ctrl.spec.name(leader), at)
		}
		// The next leader kill counts from the takeover (up to a Lease
		// duration away), or a leader would rarely lead at all.
		if err := in.ctrl.waitLeading(ctx, 60*time.Second); err != nil && ctx.Err() == nil {
			in.fail("%s: no replica took over within 60s", kind)
		}
	case FaultAPIServerRestart, FaultEtcdRestart:
		name := localcluster.APIServerComponent
		if kind == FaultEtcdRestart {
			name = localcluster.EtcdComponent
		}
		at := time.Now()
		killed, err := localcluster.Kill(in.dir, name, 30*time.Second)
		if err != nil {
			in.fail("%s: %v", kind, err)
			return
		}
		time.Sleep(in.delay())
		if _, err := localcluster.Relaunch(in.dir, name); err != nil {
			in.fail("%s: starting %s again: %v", kind, name, err)
			return
		}
		if killed {
			in.record(kind, name, at)
		}
	}
}

func (in *injector) results() ([]Fault, []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.faults), slices.Clone(in.errs)
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// readyClaim is a claim whose create succeeded, with when it was sent and
// when the watch first showed it Ready (zero if never).
type readyClaim struct {
	start, ready time.Time
}

// setRecoveries fills each fault's RecoverySeconds: the time from the
// fault to the first Ready of a claim whose create was sent after it. A
// claim sent after the fault cannot have been served by anything the fault
// interrupted, so its Ready shows the system working again. Faults close
// together share the claim that recovers them.
func setRecoveries(faults []Fault, claims []readyClaim) {
	sorted := slices.Clone(claims)
	slices.SortFunc(sorted, func(a, b readyClaim) int { return a.start.Compare(b.start) })
	// firstReady[i] is the earliest Ready among sorted[i:].
	firstReady := make([]time.Time, len(sorted)+1)
	for i := len(sorted) - 1; i >= 0; i-- {
		firstReady[i] = firstReady[i+1]
		if r := sorted[i].ready; !r.IsZero() && (firstReady[i].IsZero() || r.Before(firstReady[i])) {
			firstReady[i] = r
		}
	}
	for i := range faults {
		j, _ := slices.BinarySearchFunc(sorted, faults[i].at, func(c readyClaim, t time.Time) int { return c.start.Compare(t) })
		faults[i].RecoverySeconds = nil
		if r := firstReady[j]; !r.IsZero() {
			faults[i].RecoverySeconds = ptrTo(round3(r.Sub(faults[i].at).Seconds()))
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// FaultKindSummary sums up the faults of one kind.
type FaultKindSummary struct {
	Kind           string  `json:"kind"`
	Count          int     `json:"count"`
	Recovered      int     `json:"recovered"`
	RecoveryP50Sec float64 `json:"recoveryP50Seconds"`
	RecoveryP90Sec float64 `json:"recoveryP90Seconds"`
	RecoveryMaxSec float64 `json:"recoveryMaxSeconds"`
}

// summarizeFaults groups faults by kind, in a fixed order.
func summarizeFaults(faults []Fault) []FaultKindSummary {
	byKind := map[string][]float64{}
	count := map[string]int{}
	for _, f := range faults {
		count[f.Kind]++
		if f.RecoverySeconds != nil {
			byKind[f.Kind] = append(byKind[f.Kind], *f.RecoverySeconds)
		}
	}
	var out []FaultKindSummary
	for _, kind := range []string{FaultControllerKill, FaultLeaderKill, FaultModeSwitch, FaultAPIServerRestart, FaultEtcdRestart} {
		if count[kind] == 0 {
			continue
		}
		rs := byKind[kind]
		slices.Sort(rs)
		s := FaultKindSummary{Kind: kind, Count: count[kind], Recovered: len(rs)}
		if len(rs) > 0 {
			s.RecoveryP50Sec, s.RecoveryP90Sec, s.RecoveryMaxSec = Percentile(rs, 50), Percentile(rs, 90), rs[len(rs)-1]
		}
		out = append(out, s)
	}
	return out
}
