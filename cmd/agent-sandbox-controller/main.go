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

// Command agent-sandbox-controller runs the agent-sandbox controllers:
// wiring only (flags, clients, informers, leader election, metrics and
// health endpoints); the logic lives in pkg/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clientconn"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/controllermanager"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/pkg/gcgoal"
	"github.com/agentsandbox/agent-sandbox/pkg/leaderelection"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

const (
	binaryName = controllermanager.BinaryName
	// leaseName is the reference's leader election ID, so a rolling
	// upgrade from it hands over the lease instead of running two leaders.
	leaseName = "a3317529.agent-sandbox.x-k8s.io"
	// defaultWriteBehindWindow defers an owned Pod's metadata patch. The
	// patch that matters is a warm claim's (pool label and eviction hint
	// off): written at once, it races the claim's own status write and
	// lands before the claim is Ready in about 4 claims of 10 (make bench,
	// steady 10/s: critical path mean 2.42 writes with 0, 2.00 with
	// 500ms). Nothing waits for it: the router and the pool go by the
	// Sandbox's labels. Half a second keeps the eviction hint on a
	// claimed Pod far shorter than the cluster autoscaler's scan
	// interval (10 s); the reference's default is 0.
	defaultWriteBehindWindow = 500 * time.Millisecond
)

// gcHeadroom is the collector's target when GOGC is not in the
// environment: GOGC 50 once what it scans passes 16 MiB (3000 Sandboxes
// cached is ~18 MiB, so their RSS is as at a fixed GOGC 50), higher below
// (~110 at 10 claims/s with a pool of 50: 8–16 % less CPU per claim for
// 5 MiB more RSS; a 16 MiB floor saved no more and cost 16 MiB). At most
// 200, since the runtime's least heap goal is 4 MiB × GOGC / 100: at 800
// the starting process grew to 32 MiB before its first collection, and
// an idle controller's RSS was 54 instead of 28 MiB.
var gcHeadroom = gcgoal.Headroom{Fraction: 0.5, Min: 8 << 20, MaxPercent: 200}

type options struct {
	kubeconfig, master      string
	showVersion             bool
	extensions              bool
	leaderElect             bool
	leaderElectionNamespace string
	metricsAddr, probeAddr  string
	clusterDomain           string
	qps                     float64
	burst                   int
	poolMaxBatch            int
	poolReadinessGrace      time.Duration
	poolUnschedulableCheck  time.Duration
	warmPoolEviction        bool
	nameservers             string
	secureDefaults          sandboxpolicy.SecureDefaults
	poolReplenishDelay      time.Duration
	poolMaxRefillRate       float64
	webhook                 webhookOptions
	cacheLabelSelectors     bool
	firstStatusDelay        time.Duration
	apiConnections          int
	separateWatch           bool
	writeBehindWindow       time.Duration
	idleSuspendGrace        time.Duration
	disableClaimEvents      bool
	enablePprof             bool
	enablePprofDebug        bool
	pprofBlockRate          int
	pprofMutexFraction      int
	compat                  compatibilityFlags
	enableTracing           bool
	// tracerProvider is set by run when --enable-tracing.
	tracerProvider trace.TracerProvider
	// workers holds each controller's --*-concurrent-workers flag, by
	// controller name.
	workers map[string]*int
}

func main() {
	klog.InitFlags(nil)
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Only required if out-of-cluster.")
	flag.StringVar(&o.master, "master", "", "The address of the Kubernetes API server. Overrides any value in kubeconfig.")
	flag.BoolVar(&o.showVersion, "version", false, "Print version information and exit.")
	flag.BoolVar(&o.extensions, "extensions", false, "Also run the SandboxTemplate, SandboxWarmPool and SandboxClaim controllers.")
	flag.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader on a Lease before running controllers.")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease; empty means the pod's own namespace.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the /metrics endpoint.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "Cluster DNS domain, for status.serviceFQDN.")
	flag.Float64Var(&o.qps, "kube-api-qps", -1, "Client-side QPS limit towards the API server; negative disables client-side rate limiting.")
	flag.IntVar(&o.apiConnections, "api-connections", 1, "Spread API calls (not watches) over this many HTTP/2 connections to the API server, round robin; must be >= 1.")
	flag.BoolVar(&o.separateWatch, "separate-watch-connection", false, "Give the informers' list and watch traffic an HTTP/2 connection of its own.")
	flag.IntVar(&o.burst, "kube-api-burst", 10, "Client-side burst towards the API server; must be > 0.")
	o.workers = map[string]*int{}
	for _, d := range controllermanager.Controllers() {
		o.workers[d.Name] = flag.Int(d.Workers.Name, d.Workers.Default, d.Workers.Usage)
	}
	flag.IntVar(&o.poolMaxBatch, "sandbox-warm-pool-max-batch-size", 300, "Most pool members created or deleted in one pass; must be > 0.")
	flag.DurationVar(&o.poolReadinessGrace, "sandbox-warm-pool-readiness-grace-period", 5*time.Minute, "How long a pool member may stay not Ready before it is replaced; must be > 0.")
	flag.DurationVar(&o.poolUnschedulableCheck, "sandbox-warm-pool-unschedulable-recheck-interval", time.Minute, "How often held unschedulable pool members are looked at again; must be > 0.")
	flag.DurationVar(&o.poolReplenishDelay, "sandbox-warm-pool-replenish-delay", 0, "Hold a pool's refill for this long after its member count last dropped; 0 is off.")
	flag.Float64Var(&o.poolMaxRefillRate, "sandbox-warm-pool-max-refill-rate", 0, "Most Sandboxes each pool creates per second; 0 is unlimited.")
	flag.BoolVar(&o.warmPoolEviction, "enable-warm-pool-eviction", true, "Mark idle warm Pods safe to evict for the cluster autoscaler.")
	flag.StringVar(&o.nameservers, "secure-default-nameservers", strings.Join(sandboxpolicy.DefaultNameservers, ","),
		"Comma-separated resolvers (1 to 3 IP addresses) given to Sandboxes that pools and claims build from a Managed template without its own NetworkPolicy or dnsPolicy. "+
			"The secure default NetworkPolicy blocks private ranges, so they must be public addresses. Changing them replaces the warm pool members built with the old ones.")
	flag.BoolVar(&o.webhook.enabled, "enable-webhook", true, "Serve the v1alpha1 <-> v1beta1 conversion webhook.")
	flag.IntVar(&o.webhook.port, "webhook-port", 9443, "Port of the conversion webhook.")
	flag.StringVar(&o.webhook.certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory of the serving certificate when --manage-webhook-certs=false.")
	flag.StringVar(&o.webhook.certName, "webhook-cert-name", "tls.crt", "Certificate file name in --webhook-cert-dir.")
	flag.StringVar(&o.webhook.keyName, "webhook-key-name", "tls.key", "Key file name in --webhook-cert-dir.")
	flag.StringVar(&o.webhook.serviceName, "webhook-service-name", "agent-sandbox-webhook-service", "Service in front of the conversion webhook.")
	flag.StringVar(&o.webhook.namespace, "webhook-namespace", "agent-sandbox-system", "Namespace of that Service and of the certificate Secret.")
	flag.BoolVar(&o.webhook.manageCerts, "manage-webhook-certs", true, "Create and renew the webhook certificate (Secret agent-sandbox-webhook-certs) and inject its CA into the CRDs.")
	flag.StringVar(&o.webhook.url, "webhook-url", "", "Point the CRDs at this URL instead of the Service (a controller run outside the cluster, e.g. https://127.0.0.1:9443/convert).")
	o.webhook.limits = conversion.DefaultLimits()
	flag.Int64Var(&o.webhook.limits.MaxRequestBytes, "webhook-max-request-bytes", o.webhook.limits.MaxRequestBytes, "Largest ConversionReview the webhook reads (413 beyond); a v1alpha1 list page is converted in one review.")
	flag.IntVar(&o.webhook.limits.MaxInFlight, "webhook-max-in-flight", o.webhook.limits.MaxInFlight, "Reviews of up to 1 MiB handled at once; more get 503 with Retry-After, which the API server retries.")
	flag.Int64Var(&o.webhook.limits.MaxInFlightBytes, "webhook-max-in-flight-bytes", o.webhook.limits.MaxInFlightBytes, "Summed declared size of larger reviews handled at once; must be >= --webhook-max-request-bytes.")
	flag.DurationVar(&o.webhook.limits.ReadTimeout, "webhook-read-timeout", o.webhook.limits.ReadTimeout, "Longest time to read one webhook request, headers and body.")
	flag.DurationVar(&o.writeBehindWindow, "sandbox-write-behind-window", defaultWriteBehindWindow, "Defer an owned Pod's metadata patch by up to this long (at most 1s) so a burst of changes costs one patch and a warm claim's Pod patch lands after the claim is Ready; 0 is off (the reference's default).")
	flag.DurationVar(&o.idleSuspendGrace, "idle-suspend-grace", sandbox.DefaultIdleSuspendGrace, "Suspend a Sandbox annotated "+agentsv1beta1.IdleTimeoutAnnotation+" this long after its idle window ends, to cover the routers' activity-write latency and clock skew.")
	flag.DurationVar(&o.firstStatusDelay, "sandbox-first-status-delay", 5*time.Second, "Hold a new Sandbox's (and claim's) first status while its Pod is merely starting, for at most this long after creation, so a Pod Ready in time costs one status write, not two; 0 writes at once.")
	flag.BoolVar(&o.disableClaimEvents, "disable-claim-events", false, "The SandboxClaim controller emits no Events.")
	flag.BoolVar(&o.cacheLabelSelectors, "cache-label-selectors", false, "Cache only Pods and Services carrying the "+agentsv1beta1.SandboxNameHashLabel+" label.")
	flag.BoolVar(&o.enablePprof, "enable-pprof", false, "Serve the CPU profile at /debug/pprof/profile on the metrics address.")
	flag.BoolVar(&o.enablePprofDebug, "enable-pprof-debug", false, "Implies --enable-pprof; also serve every /debug/pprof/ profile (heap, goroutine, allocs, block, mutex, trace, cmdline, symbol).")
	flag.IntVar(&o.pprofBlockRate, "pprof-block-profile-rate", 1000000, "runtime.SetBlockProfileRate, applied with --enable-pprof-debug; negative means 0.")
	flag.IntVar(&o.pprofMutexFraction, "pprof-mutex-profile-fraction", 10, "runtime.SetMutexProfileFraction, applied with --enable-pprof-debug; negative means 0.")
	flag.BoolVar(&o.enableTracing, "enable-tracing", false, "Export OpenTelemetry spans of claims and reconciles over OTLP/HTTP (http/protobuf), configured by the standard OTEL_* environment (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, ...); see docs/guides/tracing.md.")
	registerCompatibilityFlags(&o.compat)
	flag.Parse()
	logCompatibility := applyCompatibilityFlags(o.compat)
	if os.Getenv("GOGC") == "" {
		// The heap is mostly informer caches, which live as long as the
		// process: at the default GOGC=100 it may hold twice their size,
		// and a fixed GOGC=50 (RSS with 3000 Sandboxes 73.5 → ~62 MiB)
		// made a small cluster's controller collect every few MiB of
		// allocation (at 10 claims/s GOGC 150 used 9 % less CPU per claim).
		// The heap may grow by half of what is live, but by at least
		// 8 MiB. GOGC in the environment wins; GOMEMLIMIT applies on top
		// (docs/performance.md).
		gcgoal.Start(gcHeadroom)
	}

	if o.showVersion {
		fmt.Print(version.Get().Banner(binaryName))
		return
	}
	o.webhook.clusterDomain = o.clusterDomain
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(2)
	}
	ctx := signals.SetupSignalHandler()
	logger := klog.FromContext(ctx)
	logCompatibility(logger)
	if err := run(ctx, o); err != nil {
		logger.Error(err, "Controller failed")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

func (o *options) validate() error {
	var errs []error
	if o.burst <= 0 {
		errs = append(errs, errors.New("--kube-api-burst must be > 0"))
	}
	for _, d := range controllermanager.Controllers() {
		if !d.Workers.Lenient && *o.workers[d.Name] <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be > 0", d.Workers.Name))
		}
	}
	if o.poolMaxBatch <= 0 {
		errs = append(errs, errors.New("--sandbox-warm-pool-max-batch-size must be > 0"))
	}
	if o.poolReadinessGrace <= 0 || o.poolUnschedulableCheck <= 0 {
		errs = append(errs, errors.New("--sandbox-warm-pool-readiness-grace-period and --sandbox-warm-pool-unschedulable-recheck-interval must be > 0"))
	}
	if o.poolReplenishDelay < 0 {
		errs = append(errs, errors.New("--sandbox-warm-pool-replenish-delay must be >= 0"))
	}
	if math.IsNaN(o.poolMaxRefillRate) || math.IsInf(o.poolMaxRefillRate, 0) || o.poolMaxRefillRate < 0 {
		errs = append(errs, errors.New("--sandbox-warm-pool-max-refill-rate must be finite and >= 0"))
	}
	if o.apiConnections < 1 {
		errs = append(errs, errors.New("--api-connections must be >= 1"))
	}
	if o.writeBehindWindow < 0 {
		errs = append(errs, errors.New("--sandbox-write-behind-window must be >= 0"))
	}
	if o.firstStatusDelay < 0 {
		errs = append(errs, errors.New("--sandbox-first-status-delay must be >= 0"))
	}
	if o.idleSuspendGrace < 0 {
		errs = append(errs, errors.New("--idle-suspend-grace must be >= 0"))
	}
	if ns, err := sandboxpolicy.ParseNameservers(o.nameservers); err != nil {
		errs = append(errs, fmt.Errorf("--secure-default-nameservers: %w", err))
	} else {
		o.secureDefaults.Nameservers = ns
	}
	if o.webhook.enabled {
		if err := o.webhook.limits.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-max-request-bytes, --webhook-max-in-flight, --webhook-max-in-flight-bytes, --webhook-read-timeout: %w", err))
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	v := version.Get()
	logger.Info("Starting", "binary", binaryName, "version", v.GitVersion, "revision", v.GitCommit,
		"gomaxprocs", runtime.GOMAXPROCS(0))

	cfg, err := clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	if err != nil {
		return fmt.Errorf("building client config: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	if workers := *o.workers[sandbox.Name]; o.qps > 0 && workers > o.burst {
		logger.Info("Warning: more workers than client burst; syncs will queue on the client rate limiter",
			"workers", workers, "burst", o.burst)
	}

	reg := metrics.NewRegistry()
	workqueue.SetProvider(metrics.NewWorkqueueProvider(reg))
	metrics.NewRESTClientMetrics(reg).Install()
	cfg.Wrap(metrics.NewForbiddenRequests(reg).Wrap)
	if err := conversion.Register(reg); err != nil {
		return fmt.Errorf("registering the webhook's metrics: %w", err)
	}

	if o.enableTracing {
		p, err := tracing.New(ctx, tracing.Config{ServiceName: binaryName,
			ErrorHandler: func(err error) { logger.Error(err, "OpenTelemetry") }})
		if err != nil {
			return fmt.Errorf("--enable-tracing: %w", err)
		}
		defer func() {
			// Flush what is queued, but do not hold the exit up for a
			// collector that does not answer.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracing.DefaultInitTimeout)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				logger.Error(err, "Flushing spans at exit")
			}
		}()
		o.tracerProvider = p.TracerProvider()
		logger.Info("Tracing on", "endpoint", p.Endpoint())
	}

	var ready sync.WaitGroup
	ready.Add(1)
	var readyOnce sync.Once
	markReady := func() { readyOnce.Do(ready.Done) }
	servers := startServers(ctx, o, reg, &ready)

	leaderCfg := rest.CopyConfig(cfg)
	leaderCfg.UserAgent = controllermanager.UserAgent(controllermanager.LeaderElectionUserAgent)
	kube, err := kubeclient.NewForConfig(leaderCfg)
	if err != nil {
		return err
	}
	apiCfg, watchCfg, err := clientconn.Split(cfg, o.apiConnections, o.separateWatch)
	if err != nil {
		return err
	}
	startControllers := func(ctx context.Context) error {
		return runControllers(ctx, o, apiCfg, watchCfg, reg, markReady)
	}

	if o.webhook.enabled {
		// Every replica serves conversion, leader or not.
		if err := startWebhook(ctx, o, cfg); err != nil {
			return fmt.Errorf("starting the conversion webhook: %w", err)
		}
	} else {
		logger.Info("Warning: the conversion webhook is off; the CRDs must use conversion strategy None or v1alpha1 requests fail")
	}

	var runErr error
	if !o.leaderElect {
		runErr = startControllers(ctx)
	} else {
		// A follower is ready too: it serves probes and metrics and waits.
		markReady()
		runErr = runWithLeaderElection(ctx, o, kube, startControllers)
	}
	markReady()
	shutdownServers(servers)
	return runErr
}

// runControllers builds the enabled controllers, starts them and blocks
// until ctx is done and every sync in flight has finished.
func runControllers(ctx context.Context, o options, apiCfg, watchCfg *rest.Config, reg *prometheus.Registry, markReady func()) error {
	logger := klog.FromContext(ctx)
	workers := map[string]int{}
	for name, n := range o.workers {
		workers[name] = *n
	}
	cfg := controllermanager.Config{
		API:                 apiCfg,
		Watch:               watchCfg,
		Controllers:         controllermanager.Enabled(o.extensions),
		Workers:             workers,
		CacheLabelSelectors: o.cacheLabelSelectors,
		Metrics:             reg,
		TracerProvider:      o.tracerProvider,
		Sandbox: sandbox.Options{ClusterDomain: o.clusterDomain, FirstStatusDelay: o.firstStatusDelay,
			WriteBehindWindow: o.writeBehindWindow, IdleSuspendGrace: o.idleSuspendGrace},
		Pool: sandboxwarmpool.Options{
			MaxBatchSize:         o.poolMaxBatch,
			ReadinessGracePeriod: o.poolReadinessGrace,
			UnschedulableRecheck: o.poolUnschedulableCheck,
			EvictableMembers:     o.warmPoolEviction,
			ReplenishDelay:       o.poolReplenishDelay,
			MaxRefillRate:        o.poolMaxRefillRate,
			SecureDefaults:       o.secureDefaults,
		},
		Claim: sandboxclaim.Options{DisableEvents: o.disableClaimEvents, FirstStatusDelay: o.firstStatusDelay,
			SecureDefaults: o.secureDefaults},
	}
	if o.extensions {
		domains, err := readAllowedLabelDomains(allowedLabelDomainsFile)
		if err != nil {
			return err
		}
		logger.Info("Allowed label domains for claims", "domains", domains, "default", domains == nil)
		cfg.Claim.AllowedLabelDomains = domains
	}
	m, err := controllermanager.New(ctx, cfg)
	if err != nil {
		return err
	}
	m.Start(ctx)
	logger.Info("Controllers running", "extensions", o.extensions, "controllers", m.Names())
	markReady()
	m.Wait()
	return nil
}

func runWithLeaderElection(ctx context.Context, o options, kube kubeclient.Interface, run func(context.Context) error) error {
	logger := klog.FromContext(ctx)
	ns := o.leaderElectionNamespace
	if ns == "" {
		b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return errors.New("--leader-election-namespace is required outside a cluster")
		}
		ns = strings.TrimSpace(string(b))
	}
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	leading, err := leaderelection.Run(ctx, leaderelection.Config{
		Leases:          kube.CoordinationV1(),
		Namespace:       ns,
		Name:            leaseName,
		Identity:        host + "_" + string(uuid.NewUUID()),
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		// Caches and expectations are not to be trusted once another
		// instance may be acting: exit at once, syncs in flight included.
		OnLost: func() {
			logger.Info("Lost leadership; exiting")
			klog.FlushAndExit(klog.ExitFlushTimeout, 1)
		},
	}, func(ctx context.Context) error {
		logger.Info("Became leader; starting controllers", "lease", klog.KRef(ns, leaseName))
		return run(ctx)
	})
	if leading && ctx.Err() != nil {
		logger.Info("Stopped leading on shutdown")
	}
	return err
}

// startServers serves /metrics (and pprof, when enabled) and the probes.
// /readyz answers once the controllers run (or this instance waits as a
// follower).
func startServers(ctx context.Context, o options, reg *prometheus.Registry, ready *sync.WaitGroup) []*http.Server {
	logger := klog.FromContext(ctx)
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if o.enablePprof || o.enablePprofDebug {
		// The CPU profile alone is cheap to expose; the rest (heap contents,
		// goroutine stacks, command line) only on request.
		metricsMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	if o.enablePprofDebug {
		runtime.SetBlockProfileRate(max(o.pprofBlockRate, 0))
		runtime.SetMutexProfileFraction(max(o.pprofMutexFraction, 0))
		// Index also serves the named profiles: heap, goroutine, allocs,
		// block, mutex, threadcreate.
		metricsMux.HandleFunc("/debug/pprof/", pprof.Index)
		metricsMux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		metricsMux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		metricsMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	readyCh := make(chan struct{})
	go func() { ready.Wait(); close(readyCh) }()
	probeMux := http.NewServeMux()
	probeMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	probeMux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-readyCh:
			_, _ = w.Write([]byte("ok"))
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	var servers []*http.Server
	for _, s := range []struct {
		addr string
		mux  *http.ServeMux
	}{{o.metricsAddr, metricsMux}, {o.probeAddr, probeMux}} {
		if s.addr == "" || s.addr == "0" {
			continue
		}
		srv := &http.Server{Addr: s.addr, Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error(err, "HTTP server failed", "address", srv.Addr)
			}
		}()
	}
	return servers
}

func shutdownServers(servers []*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(ctx)
	}
}

// allowedLabelDomainsFile is where the optional ConfigMap
// agent-sandbox-config is mounted: the label domains claims may use in
// additionalPodMetadata, comma or newline separated.
const allowedLabelDomainsFile = "/etc/sandbox-config/allowed-label-domains"

// readAllowedLabelDomains reads the label domains file: nil (the default,
// sandbox.users.io) when it is missing or empty. A file that exists but
// cannot be read is an error, so the process exits instead of quietly
// running with the default (the reference does the same): a mounted
// ConfigMap that cannot be read is a deployment fault to see at once.
func readAllowedLabelDomains(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the allowed label domains: %w", err)
	}
	var out []string
	for _, d := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		out = append(out, strings.ToLower(d))
	}
	return out, nil
}
