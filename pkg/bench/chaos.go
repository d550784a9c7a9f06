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
	"math/rand/v2"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// ChaosSpec is one chaos run: a claim churn against warm pools while
// faults hit the controller, the API server and etcd.
type ChaosSpec struct {
	Churn      ChurnSpec
	PoolSize   int
	Controller ControllerSpec
	Faults     FaultSchedule
	// SettleTimeout bounds each wait for the settled state after the load.
	SettleTimeout time.Duration
}

// ChaosResult is what a chaos run saw; report.json is its JSON form.
type ChaosResult struct {
	RunInfo
	Spec ChaosSpecSummary `json:"spec"`

	Claims ChurnStats `json:"claims"`
	// Faults are every fault injected, in order, with its recovery.
	Faults       []Fault            `json:"faults"`
	FaultsByKind []FaultKindSummary `json:"faultsByKind"`
	// ControllerExits are replicas that exited without being killed and
	// were started again by the harness.
	ControllerExits []ControllerExit `json:"controllerExits,omitempty"`
	// ComponentExits are control-plane processes other than the API
	// server and etcd that exited on their own and were started again
	// (componentSupervisor).
	ComponentExits []ComponentExit `json:"componentExits,omitempty"`
	// Components are the control plane's processes at the start and the
	// end: kube-controller-manager, the scheduler and kwok must run at the
	// end, in the process they started as unless one exited on its own and
	// was started again (ComponentExits).
	Components []ComponentLife `json:"components"`
	Violations []Violation     `json:"violations"`
	Errors     []string        `json:"errors,omitempty"`
}

// ChaosSpecSummary is the spec as the report shows it.
type ChaosSpecSummary struct {
	Claims          int     `json:"claims"`
	Rate            float64 `json:"rate"`
	MinLifeSeconds  float64 `json:"minLifeSeconds"`
	MaxLifeSeconds  float64 `json:"maxLifeSeconds"`
	MaxWaitSeconds  float64 `json:"maxWaitSeconds"`
	Pools           int     `json:"pools"`
	PoolSize        int     `json:"poolSize"`
	Phases          string  `json:"phases"`
	KillEvery       string  `json:"killEvery"`
	LeaderKillEvery string  `json:"leaderKillEvery"`
	APIServerEvery  string  `json:"apiserverRestartEvery"`
	EtcdEvery       string  `json:"etcdRestartEvery"`
	RestartDelayMax string  `json:"restartDelayMax"`
	Seed            uint64  `json:"seed"`
}

// ChurnStats counts the claims of a churn.
type ChurnStats struct {
	Attempted    int `json:"attempted"`
	Created      int `json:"created"`
	CreateErrors int `json:"createErrors"`
	// Served are created claims seen Ready; the rest were deleted unserved
	// after the longest wait.
	Served       int     `json:"served"`
	Deleted      int     `json:"deleted"`
	DeleteErrors int     `json:"deleteErrors"`
	Latency      Summary `json:"latency"`
	// LeftAtEnd are the claims alive when the load stopped; the settled
	// state needs each of them Ready.
	LeftAtEnd int `json:"leftAtEnd"`
}

// ComponentLife is one control-plane process at the start and the end.
type ComponentLife struct {
	Name       string `json:"name"`
	StartPID   int    `json:"startPid"`
	EndPID     int    `json:"endPid"`
	RunningEnd bool   `json:"runningAtEnd"`
}

// Failed reports whether the run found a violation or could not run its
// schedule.
func (r *ChaosResult) Failed() bool { return len(r.Violations) > 0 || len(r.Errors) > 0 }

func (s ChaosSpec) summary() ChaosSpecSummary {
	phases := ""
	for i, p := range s.Faults.Phases {
		if i > 0 {
			phases += ","
		}
		phases += p.Mode + ":" + p.Duration.String()
	}
	return ChaosSpecSummary{
		Claims: s.Churn.Claims, Rate: s.Churn.Rate, MinLifeSeconds: s.Churn.MinLife.Seconds(), MaxLifeSeconds: s.Churn.MaxLife.Seconds(), MaxWaitSeconds: s.Churn.MaxWait.Seconds(),
		Pools: len(s.Churn.Pools), PoolSize: s.PoolSize, Phases: phases,
		KillEvery: s.Faults.KillEvery.String(), LeaderKillEvery: s.Faults.LeaderKillEvery.String(),
		APIServerEvery: s.Faults.APIServerEvery.String(), EtcdEvery: s.Faults.EtcdEvery.String(),
		RestartDelayMax: s.Faults.RestartDelay.String(), Seed: s.Churn.Seed,
	}
}

// Chaos runs spec: it starts the controller replicas of the first phase,
// fills the pools, runs the churn while the injector runs the fault
// schedule, then stops the faults and checks the settled state twice:
// with the claims still alive (each Ready, nothing leaked, pools whole),
// and after deleting them all (only the pools' members left). The Checker
// watches every event of the namespace throughout.
func (e *Env) Chaos(ctx context.Context, spec ChaosSpec) (*ChaosResult, error) {
	if err := spec.Churn.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	r := &ChaosResult{RunInfo: RunInfo{Started: start}, Spec: spec.summary()}
	dir := spec.Controller.ClusterDir
	startPIDs := map[string]int{}
	for _, name := range localcluster.Components() {
		startPIDs[name] = localcluster.PID(dir, name)
	}

	cs := &controllerSet{spec: spec.Controller, logf: e.Progress.Logf, start: start}
	if _, err := cs.setMode(spec.Faults.Phases[0].Mode); err != nil {
		return nil, fmt.Errorf("starting the controller: %w", err)
	}
	defer func() {
		if err := cs.stop(); err != nil {
			e.Progress.Logf("stopping the controllers: %v", err)
		}
	}()
	if err := cs.waitLeading(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("waiting for a controller to lead: %w", err)
	}
	supCtx, stopSup := context.WithCancel(ctx)
	supDone := make(chan struct{})
	go func() { defer close(supDone); cs.supervise(supCtx) }()
	defer func() { stopSup(); <-supDone }()

	comps := &componentSupervisor{dir: dir, start: start, logf: e.Progress.Logf}
	compCtx, stopComps := context.WithCancel(ctx)
	compsDone := make(chan struct{})
	go func() { defer close(compsDone); comps.run(compCtx) }()
	defer func() { stopComps(); <-compsDone }()

	ns, w, stopWatch, err := e.churnNamespace(ctx, "chaos", spec.Churn.Pools, spec.PoolSize, start)
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	in := &injector{sched: spec.Faults, dir: dir, ctrl: cs, start: start, logf: e.Progress.Logf,
		rng: rand.New(rand.NewPCG(spec.Churn.Seed+1, 7))}
	injCtx, stopInj := context.WithCancel(ctx)
	injDone := make(chan struct{})
	go func() { defer close(injDone); in.run(injCtx) }()

	ch := newChurn(ctx, e, ns, spec.Churn, w)
	e.Progress.Logf("chaos: %d claims at %g/s over %d pools of %d; phases %s", spec.Churn.Claims, spec.Churn.Rate, len(spec.Churn.Pools), spec.PoolSize, r.Spec.Phases)
	logged := 0
	err = ch.run(ctx, func(created, errs int64) {
		faults, _ := in.results()
		vs := w.checker.Violations()
		// Each violation as soon as it is seen, so a long run that is
		// interrupted still names the objects.
		for _, v := range vs[logged:] {
			e.Progress.Logf("VIOLATION %s at %.2fs: %s", v.Rule, v.At.Seconds(), v.Detail)
		}
		logged = len(vs)
		e.Progress.Status("created %d/%d claims (%d refused), %d Ready, %d faults, %d violations",
			created, spec.Churn.Claims, errs, w.readyClaims(), len(faults), len(vs))
	})
	e.Progress.Done()
	stopInj()
	<-injDone
	if err != nil {
		ch.finish()
		return nil, err
	}
	e.Progress.Logf("load done; faults stopped; waiting for the API server and a leading controller")
	if err := e.recoverControlPlane(ctx, dir); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	if err := cs.waitLeading(ctx, 2*time.Minute); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("no controller led within 2m after the faults: %v", err))
	}
	ch.finish()

	r.Violations = append(r.Violations, e.settleAndDrain(ctx, ns, w, spec.Churn.Pools, start, spec.SettleTimeout, &r.Claims.LeftAtEnd)...)

	faults, errs := in.results()
	r.Errors = append(r.Errors, errs...)
	r.Claims = churnStats(ch, w, r.Claims.LeftAtEnd)
	setRecoveries(faults, readyClaims(ch, w))
	r.Faults, r.FaultsByKind = faults, summarizeFaults(faults)
	r.ControllerExits = cs.exitsSoFar()
	r.ComponentExits = comps.exited()
	for _, name := range localcluster.Components() {
		c := ComponentLife{Name: name, StartPID: startPIDs[name], EndPID: localcluster.PID(dir, name), RunningEnd: localcluster.Running(dir, name)}
		r.Components = append(r.Components, c)
		restarted := slices.ContainsFunc(r.ComponentExits, func(x ComponentExit) bool { return x.Name == name })
		restartable := name == localcluster.APIServerComponent || name == localcluster.EtcdComponent || restarted
		if c.StartPID != 0 && (!c.RunningEnd || (!restartable && c.EndPID != c.StartPID)) {
			r.Violations = append(r.Violations, Violation{At: time.Since(start), Rule: RuleComponentDied,
				Detail: fmt.Sprintf("%s ran as pid %d at the start and as pid %d (running %v) at the end", name, c.StartPID, c.EndPID, c.RunningEnd)})
		}
	}
	r.Violations = append(w.checker.Violations(), r.Violations...)
	if !r.Failed() && !e.Keep {
		e.deleteNamespace(context.WithoutCancel(ctx), ns)
	}
	r.Finished = time.Now()
	return r, nil
}

// churnNamespace makes a namespace with a template and pools of size, all
// full, watched by a Checker that checks each pool's size in every state
// the API server held and forgets deleted objects (the run is unbounded).
func (e *Env) churnNamespace(ctx context.Context, scenario string, pools []string, size int, start time.Time) (string, *agentWatch, func(), error) {
	ns, err := e.namespace(ctx, scenario)
	if err != nil {
		return "", nil, nil, err
	}
	w, stop, err := e.watchAgents(ctx, ns, pools[0], start, false)
	if err != nil {
		return "", nil, nil, err
	}
	w.checker.ForgetGone()
	var writes writeCounter
	if err := e.createTemplate(ctx, ns, &writes); err != nil {
		stop()
		return "", nil, nil, err
	}
	for _, p := range pools {
		w.checker.SetPoolReplicas(p, size)
		if _, err := e.Agents.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, poolObject(p, size), metav1.CreateOptions{}); err != nil {
			stop()
			return "", nil, nil, fmt.Errorf("creating pool %s: %w", p, err)
		}
	}
	if err := e.waitUntil(ctx, fmt.Sprintf("%d pools of %d Ready", len(pools), size), func() (bool, string) {
		whole := 0
		for _, p := range pools {
			members, ready := w.checker.PoolStats(p)
			w.mu.Lock()
			st := w.statuses[p]
			w.mu.Unlock()
			if members == size && ready == size && int(st.ReadyReplicas) == size {
				whole++
			}
		}
		return whole == len(pools), fmt.Sprintf("%d/%d pools whole", whole, len(pools))
	}); err != nil {
		stop()
		return "", nil, nil, err
	}
	return ns, w, stop, nil
}

// recoverControlPlane makes sure etcd and the API server run after the
// last fault and waits until the API answers.
func (e *Env) recoverControlPlane(ctx context.Context, dir string) error {
	for _, name := range []string{localcluster.EtcdComponent, localcluster.APIServerComponent} {
		if _, err := localcluster.RelaunchIfExited(dir, name, nil); err != nil {
			return fmt.Errorf("starting %s after the faults: %w", name, err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := e.Kube.Discovery().ServerVersion()
		return err == nil, nil
	})
}

// settleAndDrain checks the settled state with the remaining claims alive,
// then deletes them and checks that only the pools' members are left. It
// returns what did not settle within timeout and counts the claims left.
func (e *Env) settleAndDrain(ctx context.Context, ns string, w *agentWatch, pools []string, start time.Time, timeout time.Duration, left *int) []Violation {
	var out []Violation
	vs, st, err := e.waitSettled(ctx, ns, pools, start, timeout, "settled state with the last claims alive")
	if err != nil {
		out = append(out, Violation{At: time.Since(start), Rule: RuleNotSettled, Detail: err.Error()})
	}
	*left = len(st.Claims)
	out = append(out, vs...)
	e.Progress.Logf("settled with %d claims alive: %d problems; deleting every claim", len(st.Claims), len(vs))
	if err := e.Agents.ExtensionsV1beta1().SandboxClaims(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		out = append(out, Violation{At: time.Since(start), Rule: RuleNotSettled, Detail: fmt.Sprintf("deleting the remaining claims: %v", err)})
		return out
	}
	vs, _, err = e.waitSettled(ctx, ns, pools, start, timeout, "settled state with every claim deleted")
	if err != nil {
		out = append(out, Violation{At: time.Since(start), Rule: RuleNotSettled, Detail: err.Error()})
	}
	out = append(out, vs...)
	if n := w.checker.Controlled(extv1beta1.SandboxClaimKind); n > 0 && len(vs) == 0 {
		// The List says clean but the watch still shows claim-owned
		// Sandboxes: the watch lags; give it the same timeout.
		_ = e.waitUntil(ctx, "the watch to show no claim-owned sandbox", func() (bool, string) {
			n := w.checker.Controlled(extv1beta1.SandboxClaimKind)
			return n == 0, fmt.Sprintf("%d left", n)
		})
	}
	return out
}

func churnStats(ch *churn, w *agentWatch, left int) ChurnStats {
	s := ChurnStats{
		Created: int(ch.created.Load()), CreateErrors: int(ch.createErrors.Load()),
		Deleted: int(ch.deleted.Load()), DeleteErrors: int(ch.deleteErrors.Load()), LeftAtEnd: left,
	}
	s.Attempted = s.Created + s.CreateErrors
	var lat []time.Duration
	for _, c := range ch.samples() {
		if at, _, ok := w.readyAt(c.name); ok {
			s.Served++
			lat = append(lat, at.Sub(c.start))
		}
	}
	s.Latency = Summarize(lat)
	return s
}

func readyClaims(ch *churn, w *agentWatch) []readyClaim {
	var out []readyClaim
	for _, c := range ch.samples() {
		rc := readyClaim{start: c.start}
		if at, _, ok := w.readyAt(c.name); ok {
			rc.ready = at
		}
		out = append(out, rc)
	}
	return out
}
