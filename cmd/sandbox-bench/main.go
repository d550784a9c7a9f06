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

// Command sandbox-bench measures an agent-sandbox controller through the
// cluster API: the floor (rtt), the ReplicaSet yardstick (rs), warm pool
// fill (pool), a burst of claims (claims), claims at a fixed rate
// (steady), steps of increasing rate until one misses the bar (ramp), the
// router's per-request overhead against a minimal reverse
// proxy (router), the writes of activity tracking for idle auto-suspend
// (idle), or all of them in one run (all); chaos runs the
// controller itself under a claim churn while killing it, its leader, the
// API server and etcd. It writes report.json,
// report.md and SVG plots into --out. The logic lives in pkg/bench.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/agentsandbox/agent-sandbox/pkg/bench"
	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

const usage = `usage: sandbox-bench COMMAND [flags]

commands:
  rtt     --n N                          one write observed through a watch, N times
  rs      --size N                       a ReplicaSet of N pause Pods (kube-controller-manager)
  pool    --size N                       a warm pool of N: fill time, max members, writes
  claims  --pool N --claims M            a burst of M claims against a pool of N
  steady  --rate R --duration D --pool N claims at R/s for D
  ramp    --rates R1,R2,... --step D --pool N
                                         steady steps of increasing rate against one pool,
                                         stopping after the first with p99 > 1 s or a cold claim
  router  --router-binary B --rounds N   the router vs a minimal reverse proxy vs direct
                                         (needs the local cluster: kwok's loopback pod IPs)
  idle    --sandboxes N --window W --windows K --interval I
                                         activity tracking for idle auto-suspend: committed
                                         last-activity writes per sandbox per window through
                                         two in-process routers (needs the local cluster)
  all     [--rtt-n ... --steady-runs ...] every scenario in one run (issue #9 defaults;
                                         --warm-env-runs: steady runs where every other
                                         claim sets env, plain and env side by side;
                                         router only with --router-rounds N, ramp only with
                                         --ramp-rates, RSS pool only with --rss-pool, as make
                                         bench does)
  chaos   --cluster-dir DIR --claims N   claims churned while the controller, its leader, the
                                         API server and etcd are killed (runs the controller;
                                         exit 1 on any violation)
  soak    --cluster-dir DIR --claims N    claims churned against one controller process, its RSS,
                                         heap and goroutines sampled and fitted (exit 1 unless flat)
  version                                print the version

common flags: --kubeconfig --controller-metrics-url --controller-pid --process-pid-dir --controller-gogc-env --out --settle --timeout --keep
run 'sandbox-bench COMMAND -h' for the flags of one command.`

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "minimal-proxy" {
		minimalProxy(os.Args[2:])
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	switch cmd {
	case "chaos":
		os.Exit(chaosCommand(os.Args[2:]))
	case "soak":
		os.Exit(soakCommand(os.Args[2:]))
	}
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to measure")
	metricsURL := fs.String("controller-metrics-url", "", "the controller's /metrics (e.g. http://127.0.0.1:18080/metrics) for its own writes, RSS and CPU; optional")
	out := fs.String("out", "", "directory for report.json, report.md and the plots; empty prints the markdown only")
	settle := fs.Duration("settle", 2*time.Second, "wait after each goal before the closing metrics, so trailing writes are counted")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound of every wait")
	keep := fs.Bool("keep", false, "keep the namespaces of the scenarios")
	gogcEnv := fs.String("controller-gogc-env", "", "GOGC in the controller's environment, for the report: a value, or \"unset\"; empty: not known")
	pidDir := fs.String("process-pid-dir", "", "a directory of <name>.pid files of the processes sharing this machine (the local control plane's); the report gives each one's CPU time per scenario and per claim; empty: not measured")
	controllerPID := fs.Int("controller-pid", 0, "the controller's process ID on this machine: its RSS is sampled from /proc every 100ms instead of through /metrics every 500ms, so the bench's sampling costs the controller no CPU; 0: through /metrics")
	var notes []string
	fs.Func("note", "a line about the setup for the report (repeatable)", func(s string) error {
		notes = append(notes, s)
		return nil
	})

	var plan bench.Plan
	var steadyRuns, warmEnvRuns string
	routerSpec := bench.RouterSpec{Load: bench.LoadSpec{Clients: 8, Warmup: time.Second}}
	routerRounds := 0
	var routerArgs string
	routerFlags := func(defaultRounds int) {
		fs.StringVar(&routerSpec.RouterBinary, "router-binary", siblingBinary("sandbox-router"), "the sandbox-router executable")
		fs.StringVar(&routerArgs, "router-args", "", "extra flags of the router process, space-separated")
		fs.IntVar(&routerSpec.Load.Clients, "router-clients", 8, "concurrent keep-alive clients")
		fs.DurationVar(&routerSpec.Load.Duration, "router-duration", 5*time.Second, "measured time per path and round")
		fs.IntVar(&routerRounds, "router-rounds", defaultRounds, "rounds (each measures direct, minimal proxy and router once); 0 skips")
	}
	var rate *float64
	var duration *time.Duration
	var steadyPool *int
	var rampRates string
	ramp := bench.RampSpec{}
	idle := bench.IdleSpec{}
	// The small default runs in about two minutes: one window of the
	// 1m minimum W (the API refuses less); --idle-sandboxes 1000
	// --idle-windows 3 is issue 17's size.
	idleFlags := func(prefix string, defaultSandboxes int) {
		fs.IntVar(&idle.Sandboxes, prefix+"sandboxes", defaultSandboxes, "sandboxes opted in to idle auto-suspend (issue 17: 1000; 0 skips)")
		fs.DurationVar(&idle.Window, prefix+"window", time.Minute, "their idle-timeout W (at least 1m)")
		fs.IntVar(&idle.Windows, prefix+"windows", 1, "windows measured")
		fs.DurationVar(&idle.Interval, prefix+"interval", 5*time.Second, "time between two requests to one sandbox")
	}
	rampFlags := func(prefix, defaultRates string) {
		fs.StringVar(&rampRates, prefix+"rates", defaultRates, "ramp steps, claims per second, increasing (empty skips)")
		fs.DurationVar(&ramp.Step, prefix+"step", 30*time.Second, "how long each ramp step creates claims")
		fs.IntVar(&ramp.Pool, prefix+"pool", 100, "the ramp's one pool (issue 19: 100)")
	}
	switch cmd {
	case "rtt":
		fs.IntVar(&plan.RTT, "n", 200, "round trips")
	case "rs":
		fs.IntVar(&plan.RS, "size", 300, "replicas")
	case "pool":
		fs.IntVar(&plan.Pool, "size", 300, "pool replicas")
	case "claims":
		fs.IntVar(&plan.ClaimsPool, "pool", 150, "pool replicas")
		fs.IntVar(&plan.Claims, "claims", 200, "claims created at once")
	case "steady":
		rate = fs.Float64("rate", 10, "claims per second")
		duration = fs.Duration("duration", 30*time.Second, "how long claims are created")
		steadyPool = fs.Int("pool", 0, "pool replicas (0: five seconds of claims, at least 20)")
	case "ramp":
		rampFlags("", "10,15,20,25,30,40,50")
	case "router":
		routerFlags(5)
	case "idle":
		idleFlags("", 50)
	case "all":
		// Off unless asked for (make bench does): the scenario serves the
		// upstream on the sandbox's Pod IP, which only the local cluster's
		// loopback addresses allow, so 'all' in a real cluster skips it.
		routerFlags(0)
		fs.IntVar(&plan.RTT, "rtt-n", 200, "rtt round trips (0 skips)")
		fs.IntVar(&plan.RS, "rs-size", 300, "ReplicaSet replicas (0 skips)")
		fs.IntVar(&plan.Pool, "pool-size", 300, "pool replicas (0 skips)")
		fs.IntVar(&plan.FillRounds, "fill-rounds", 1, "fill the ReplicaSet and the pool this many times, alternating; the fill rows take the median ratio")
		fs.IntVar(&plan.ClaimsPool, "claims-pool", 150, "pool of the burst (0 skips)")
		fs.IntVar(&plan.Claims, "claims", 200, "claims of the burst (0 skips)")
		fs.StringVar(&steadyRuns, "steady-runs", "10:30s,45:20s", "steady runs RATE:DURATION[:POOL],... (empty skips)")
		fs.StringVar(&warmEnvRuns, "warm-env-runs", "10:30s", "steady runs where every other claim sets env, RATE:DURATION[:POOL],... (empty skips)")
		fs.IntVar(&plan.RSSPool, "rss-pool", 0, "a pool of this size for the controller's RSS (issue 19: 3000; 0 skips)")
		rampFlags("ramp-", "")
		idleFlags("idle-", 50)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return
	case "--version", "version":
		fmt.Print(version.Get().Banner("sandbox-bench"))
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s\n", cmd, usage)
		os.Exit(2)
	}
	if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if (cmd == "router" || cmd == "all") && routerRounds > 0 {
		self, err := os.Executable()
		if err != nil {
			fail(err)
		}
		if routerSpec.Load.Clients <= 0 || routerSpec.Load.Duration <= 0 {
			fail(fmt.Errorf("--router-clients and --router-duration must be positive"))
		}
		routerSpec.Kubeconfig, routerSpec.SelfBinary, routerSpec.Rounds = *kubeconfig, self, routerRounds
		routerSpec.RouterArgs = strings.Fields(routerArgs)
		plan.Router = &routerSpec
	}
	if cmd == "ramp" || cmd == "all" {
		rates, err := bench.ParseRampRates(rampRates)
		if err != nil {
			fail(err)
		}
		if cmd == "ramp" && len(rates) == 0 {
			fail(fmt.Errorf("--rates is empty"))
		}
		if len(rates) > 0 {
			if ramp.Step <= 0 || ramp.Pool <= 0 {
				fail(fmt.Errorf("the ramp's step and pool must be positive"))
			}
			ramp.Rates = rates
			plan.Ramp = &ramp
		}
	}
	if (cmd == "idle" || cmd == "all") && idle.Sandboxes > 0 {
		if err := idle.Validate(); err != nil {
			fail(err)
		}
		plan.Idle = &idle
	}
	switch cmd {
	case "all":
		specs, err := bench.ParseSteadySpecs(steadyRuns)
		if err != nil {
			fail(err)
		}
		plan.Steady = specs
		if plan.WarmEnv, err = bench.ParseSteadySpecs(warmEnvRuns); err != nil {
			fail(err)
		}
	case "steady":
		if *rate <= 0 || *duration <= 0 {
			fail(fmt.Errorf("--rate and --duration must be positive"))
		}
		p := *steadyPool
		if p == 0 {
			p = bench.DefaultSteadyPool(*rate)
		}
		plan.Steady = []bench.SteadySpec{{Rate: *rate, Duration: *duration, Pool: p}}
	}

	ctx := signals.SetupSignalHandler()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(fmt.Errorf("loading kubeconfig: %w", err))
	}
	progress := bench.NewProgress(os.Stderr, 2*time.Second)
	env, err := bench.NewEnv(cfg, *metricsURL, progress)
	if err != nil {
		fail(err)
	}
	env.Settle, env.Timeout, env.Keep = *settle, *timeout, *keep
	if env.Ctrl != nil {
		if _, err := env.Ctrl.Snapshot(ctx); err != nil {
			fail(fmt.Errorf("the controller metrics URL does not answer: %w", err))
		}
		env.Ctrl.PID = *controllerPID
		if _, err := env.Ctrl.RSS(ctx); err != nil {
			fail(fmt.Errorf("--controller-pid %d: %w", *controllerPID, err))
		}
	}

	if *pidDir != "" {
		env.Procs = &bench.Processes{Dir: *pidDir}
		if _, err := env.Procs.CPUSeconds(); err != nil {
			fail(fmt.Errorf("--process-pid-dir: %w", err))
		}
	}

	report := &bench.Report{Started: time.Now(), Cluster: env.Describe(ctx, cfg.Host), Notes: notes}
	report.Cluster.ControllerGOGCEnv = *gogcEnv
	progress.Logf("measuring %s (%s, %d nodes), controller metrics: %v", cfg.Host, report.Cluster.ServerVersion, report.Cluster.Nodes, env.Ctrl != nil)
	env.Run(ctx, report, plan)
	report.Finished = time.Now()
	report.Evaluate()
	if err := write(report, *out); err != nil {
		fail(err)
	}
	if len(report.Errors) > 0 {
		os.Exit(1)
	}
}

func write(r *bench.Report, out string) error {
	if out == "" {
		fmt.Print(r.Markdown(nil))
		return nil
	}
	if err := r.Write(out); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Fprintf(os.Stderr, "report: %s/report.md\n", out)
	return nil
}

// siblingBinary is name next to this executable (bin/ in a checkout).
func siblingBinary(name string) string {
	self, err := os.Executable()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(self), name)
}

// minimalProxy is the hidden 'minimal-proxy' command: the yardstick of the
// router scenario, a process of its own like the router. It prints
// "listening on ADDR" once bound and serves until SIGTERM.
func minimalProxy(args []string) {
	fs := flag.NewFlagSet("minimal-proxy", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := fs.String("upstream", "", "URL of the upstream server")
	_ = fs.Parse(args)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	if err := bench.ServeMinimalProxy(signals.SetupSignalHandler(), l, *upstream); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sandbox-bench:", err)
	os.Exit(1)
}
