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

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/agentsandbox/agent-sandbox/pkg/bench"
	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// churnFlags are the flags chaos and soak share: the cluster, the
// controller they run, and the claim load.
type churnFlags struct {
	clusterDir, out  string
	controllerArgs   string
	controller       bench.ControllerSpec
	churn            bench.ChurnSpec
	pools, poolSize  int
	settle           time.Duration
	keep             bool
	notes            []string
	seed             uint64
	controllerBinary string
}

func (f *churnFlags) register(fs *flag.FlagSet, claims int, minLife, maxLife time.Duration) {
	fs.StringVar(&f.clusterDir, "cluster-dir", "", "state directory of a detached local cluster (bin/local-cluster up -dir): its kubeconfig, pid files and logs; required")
	fs.StringVar(&f.out, "out", "", "directory for report.json and report.md (and plots); empty prints the markdown only")
	fs.StringVar(&f.controllerBinary, "controller-binary", siblingBinary("agent-sandbox-controller"), "the controller executable to run")
	fs.StringVar(&f.controllerArgs, "controller-args", "", "extra controller flags, space-separated (they win)")
	fs.IntVar(&f.controller.BasePort, "controller-port", 31080, "replica i serves metrics on this port + 2i and probes on + 2i + 1 (apart from make dev 8080, e2e-local 18080, bench 28080, and below the ephemeral range 32768+, where an outgoing connection, even the harness polling the port before the controller binds it, can hold the port)")
	fs.IntVar(&f.controller.WebhookPort, "webhook-port", 31443, "conversion webhook port of replica 0")
	fs.IntVar(&f.churn.Claims, "claims", claims, "claims to create (successful creates)")
	fs.Float64Var(&f.churn.Rate, "rate", 10, "claims created per second")
	fs.DurationVar(&f.churn.MinLife, "min-life", minLife, "shortest life of a claim, from Ready (as the watch shows it) to its delete")
	fs.DurationVar(&f.churn.MaxLife, "max-life", maxLife, "longest life of a claim")
	fs.DurationVar(&f.churn.MaxWait, "max-wait", time.Minute, "a claim not Ready this long after its create starts its life anyway (and is deleted unserved)")
	fs.IntVar(&f.pools, "pools", 2, "warm pools; each claim picks one at random")
	fs.IntVar(&f.poolSize, "pool-size", 20, "replicas of each pool")
	fs.DurationVar(&f.settle, "settle-timeout", 3*time.Minute, "bound of each wait for the settled state after the load")
	fs.BoolVar(&f.keep, "keep", false, "keep the namespace even when the run passed")
	fs.Uint64Var(&f.seed, "seed", uint64(time.Now().UnixNano()), "seed of claim lives, pool choices and restart delays")
	fs.Func("note", "a line about the setup for the report (repeatable)", func(s string) error {
		f.notes = append(f.notes, s)
		return nil
	})
}

// finish fills what the flags imply once parsed.
func (f *churnFlags) finish() error {
	if f.clusterDir == "" {
		return errors.New("--cluster-dir is required")
	}
	dir, err := filepath.Abs(f.clusterDir)
	if err != nil {
		return err
	}
	f.controller.ClusterDir, f.controller.Binary = dir, f.controllerBinary
	f.controller.ExtraArgs = strings.Fields(f.controllerArgs)
	if f.pools <= 0 || f.poolSize <= 0 {
		return errors.New("--pools and --pool-size must be positive")
	}
	f.churn.Pools = nil
	for i := range f.pools {
		f.churn.Pools = append(f.churn.Pools, fmt.Sprintf("pool-%d", i))
	}
	f.churn.Seed = f.seed
	return f.churn.Validate()
}

// env builds the bench's clients from the cluster's admin kubeconfig.
func (f *churnFlags) env() (*bench.Env, string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(f.controller.ClusterDir, localcluster.KubeconfigFile))
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	env, err := bench.NewEnv(cfg, "", bench.NewProgress(os.Stderr, 2*time.Second))
	if err != nil {
		return nil, "", err
	}
	env.Keep, env.Timeout = f.keep, 5*time.Minute
	return env, cfg.Host, nil
}

// chaosCommand is 'sandbox-bench chaos'; it returns the exit code: 1 on
// any violation or harness error.
func chaosCommand(args []string) int {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	var f churnFlags
	f.register(fs, 10000, 2*time.Second, 20*time.Second)
	var sched bench.FaultSchedule
	phases := fs.String("phases", "single:60s,leader:60s", "controller modes MODE:DURATION,... cycled until the load is done; single = one replica without leader election, leader = two replicas on a Lease")
	fs.DurationVar(&sched.KillEvery, "kill-every", 5*time.Second, "SIGKILL the controller this often in single phases (0: never)")
	fs.DurationVar(&sched.LeaderKillEvery, "leader-kill-every", 20*time.Second, "SIGKILL the elected leader this long after the last takeover, in leader phases (0: never)")
	fs.DurationVar(&sched.APIServerEvery, "apiserver-restart-every", 60*time.Second, "SIGKILL and restart kube-apiserver this often (0: never)")
	fs.DurationVar(&sched.EtcdEvery, "etcd-restart-every", 90*time.Second, "SIGKILL and restart etcd this often (0: never)")
	fs.DurationVar(&sched.RestartDelay, "restart-delay", time.Second, "a killed process starts again after a random pause in [0, this]")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if err := f.finish(); err != nil {
		fail(err)
	}
	var err error
	if sched.Phases, err = bench.ParsePhases(*phases); err != nil {
		fail(err)
	}
	env, host, err := f.env()
	if err != nil {
		fail(err)
	}
	ctx := signals.SetupSignalHandler()
	spec := bench.ChaosSpec{Churn: f.churn, PoolSize: f.poolSize, Controller: f.controller, Faults: sched, SettleTimeout: f.settle}
	cluster := env.Describe(ctx, host)
	r, err := env.Chaos(ctx, spec)
	if err != nil {
		fail(err)
	}
	r.Cluster, r.Notes = cluster, f.notes
	return f.report(r, fmt.Sprintf("sandbox-bench chaos: %d violations, %d harness errors", len(r.Violations), len(r.Errors)))
}

// churnReport is what chaos and soak return.
type churnReport interface {
	Markdown() string
	Write(dir string) error
	Failed() bool
}

// report writes r to --out (or prints it) and returns the exit code,
// printing failure when r failed.
func (f *churnFlags) report(r churnReport, failure string) int {
	if f.out == "" {
		fmt.Print(r.Markdown())
	} else {
		if err := r.Write(f.out); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "report: %s/report.md\n", f.out)
	}
	if r.Failed() {
		fmt.Fprintln(os.Stderr, failure)
		return 1
	}
	return 0
}

// soakCommand is 'sandbox-bench soak'; it returns the exit code: 1 when a
// metric grew beyond its tolerance, or on any violation or harness error.
func soakCommand(args []string) int {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	var f churnFlags
	f.register(fs, 100000, time.Second, 10*time.Second)
	var spec bench.SoakSpec
	fs.DurationVar(&spec.Interval, "interval", 10*time.Second, "time between two samples of the controller's /metrics")
	fs.IntVar(&spec.WarmupClaims, "warmup-claims", -1, "claims left out of the fit (-1: a tenth of --claims, at least 1000)")
	fs.BoolVar(&spec.GCBeforeSample, "gc-before-sample", true, "force a GC in the controller (pprof heap?gc=1) before each sample")
	fs.Float64Var(&spec.Tolerance.RSSMiB, "rss-tolerance", 2, "RSS growth per 10k claims still flat, MiB")
	fs.Float64Var(&spec.Tolerance.HeapMiB, "heap-tolerance", 1, "heap-in-use growth per 10k claims still flat, MiB")
	fs.Float64Var(&spec.Tolerance.Goroutines, "goroutine-tolerance", 2, "goroutine growth per 10k claims still flat")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if err := f.finish(); err != nil {
		fail(err)
	}
	if spec.Interval <= 0 {
		fail(errors.New("--interval must be positive"))
	}
	if spec.WarmupClaims < 0 {
		spec.WarmupClaims = max(f.churn.Claims/10, 1000)
	}
	env, host, err := f.env()
	if err != nil {
		fail(err)
	}
	ctx := signals.SetupSignalHandler()
	spec.Churn, spec.PoolSize, spec.Controller, spec.SettleTimeout = f.churn, f.poolSize, f.controller, f.settle
	cluster := env.Describe(ctx, host)
	r, err := env.Soak(ctx, spec)
	if err != nil {
		fail(err)
	}
	r.Cluster, r.Notes = cluster, f.notes
	return f.report(r, fmt.Sprintf("sandbox-bench soak: %d metrics not flat, %d violations, %d harness errors", len(r.Slopes)-countFlat(r.Slopes), len(r.Violations), len(r.Errors)))
}

func countFlat(ss []bench.SoakSlope) int {
	n := 0
	for _, s := range ss {
		if s.Flat {
			n++
		}
	}
	return n
}
