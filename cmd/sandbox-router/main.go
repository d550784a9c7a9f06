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

// Command sandbox-router runs the sandbox router, the header-routed reverse
// proxy in front of sandbox Pods. Wiring only: flags, clients and the
// authorizer; the logic lives in pkg/router.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clientconn"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/pkg/signals"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

const binaryName = "sandbox-router"

type options struct {
	router.ServeOptions
	showVersion bool
	kubeconfig  string
	qps         float64
	burst       int

	cacheEnabled       bool
	cacheNamespace     string
	dnsFallback        bool
	clusterDomain      string
	allowLoopbackPodIP bool
	proxyTimeout       time.Duration
	respHeaderTimeout  time.Duration
	maxBodyBytes       int64
	maxRespHeaderBytes int64
	maxInflight        int
	maxInflightClient  int
	writeTimeout       time.Duration
	tunnelIdleTimeout  time.Duration
	retries            int
	retryInitialDelay  time.Duration
	retryMaxDelay      time.Duration
	accessLog          bool
	enableTracing      bool
	activityTracking   bool

	authzMode        string
	trTTL            time.Duration
	trCacheSize      int
	trRequireToken   bool
	trAudiences      string
	trScope          string
	trAllowOpaque    bool
	reviewQPS        float64
	reviewBurst      int
	scopedSecretFile string
	scopedRequireUID bool

	wakeAuthz   string
	wakeTimeout time.Duration
}

func main() {
	klog.InitFlags(nil)
	var o options
	flag.BoolVar(&o.showVersion, "version", false, "Print version information and exit.")
	flag.StringVar(&o.HTTPAddr, "http-bind-address", ":8080", "Plain HTTP proxy listener; empty disables it.")
	flag.StringVar(&o.HTTPSAddr, "https-bind-address", "", "HTTPS proxy listener (conventionally :8443); needs --tls-cert-file and --tls-key-file.")
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":9090", "Address of /metrics; empty disables it.")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; empty disables it.")
	flag.StringVar(&o.TLSCertFile, "tls-cert-file", "", "PEM certificate of the HTTPS listener; reloaded when it changes.")
	flag.StringVar(&o.TLSKeyFile, "tls-key-file", "", "PEM key of the HTTPS listener; reloaded when it changes.")
	flag.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", router.DefaultShutdownTimeout, "Drain budget on SIGTERM/SIGINT, shared by all listeners; >= 0.")
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Path to a kubeconfig (env KUBECONFIG); empty means in-cluster config, or the default kubeconfig outside a Pod.")
	flag.Float64Var(&o.qps, "kube-api-qps", 50, "Client-side QPS of the routing cache's client; review calls have their own budget (--authz-review-qps); > 0.")
	flag.IntVar(&o.burst, "kube-api-burst", 100, "Client-side burst of the routing cache's client; > 0.")

	flag.BoolVar(&o.cacheEnabled, "cache-enabled", true, "Accepted for compatibility with the reference manifests; the Pod cache is always on and false is refused.")
	flag.StringVar(&o.cacheNamespace, "cache-namespace", "", "Watch Sandboxes and their Pods in this namespace only; empty watches all namespaces.")
	flag.BoolVar(&o.dnsFallback, "dns-fallback", false, "Route sandboxes missing from the cache to <id>.<namespace>.svc.<cluster-domain> (Service-backed sandboxes) instead of answering 404; only addresses in that Sandbox's status.podIPs are dialled.")
	flag.StringVar(&o.clusterDomain, "cluster-domain", router.DefaultClusterDomain, "Cluster DNS domain for --dns-fallback (env CLUSTER_DOMAIN).")
	flag.BoolVar(&o.allowLoopbackPodIP, "allow-loopback-pod-ip", false, "Accept loopback X-Sandbox-Pod-IP hints (sidecar and test use only).")
	flag.DurationVar(&o.proxyTimeout, "proxy-timeout", router.DefaultProxyTimeout, "End-to-end bound of each non-upgrade request, and the cap of X-Sandbox-Timeout (env PROXY_TIMEOUT_SECONDS); > 0.")
	flag.DurationVar(&o.respHeaderTimeout, "response-header-timeout", router.DefaultResponseHeaderTimeout, "Wait for upstream response headers after the request was sent; X-Sandbox-Timeout raises it per request up to --proxy-timeout; > 0.")
	flag.Int64Var(&o.maxBodyBytes, "max-request-body-bytes", 0, "Largest accepted request body (413 beyond); 0 is unlimited.")
	flag.Int64Var(&o.maxRespHeaderBytes, "max-response-header-bytes", router.DefaultMaxResponseHeaderBytes, "Largest accepted sandbox response header block (502 beyond); > 0.")
	flag.IntVar(&o.maxInflight, "max-inflight-requests", router.DefaultMaxInflightRequests, "Requests in flight, upgraded connections included, beyond which requests are answered 503 with Retry-After; 0 disables.")
	flag.IntVar(&o.maxInflightClient, "max-inflight-requests-per-client", router.DefaultMaxInflightPerClient, "The same bound per client IP (the TCP peer: behind a proxy that terminates connections, that proxy); 0 disables.")
	flag.IntVar(&o.MaxConnections, "max-connections", router.DefaultMaxConnections, "Connections each proxy listener holds open; further clients wait to be accepted; 0 disables.")
	flag.IntVar(&o.MaxConnectionsPerClient, "max-connections-per-client", router.DefaultMaxConnectionsPerClient, "Connections per client IP on each proxy listener; the excess is closed at once; 0 disables.")
	flag.IntVar(&o.MaxRequestHeaderBytes, "max-request-header-bytes", router.DefaultMaxRequestHeaderBytes, "Largest accepted client request header block on the proxy listeners (431 beyond); > 0.")
	flag.DurationVar(&o.writeTimeout, "write-timeout", router.DefaultWriteTimeout, "Longest one write to a client (on upgraded connections, to either peer) may block before the connection is closed; 0 disables.")
	flag.DurationVar(&o.tunnelIdleTimeout, "tunnel-idle-timeout", router.DefaultTunnelIdleTimeout, "Close an upgraded (WebSocket) connection after this long without a byte in either direction; 0 disables.")
	flag.IntVar(&o.retries, "upstream-max-retries", router.DefaultUpstreamMaxRetries, "Retries of failed upstream dials; 0 disables.")
	flag.DurationVar(&o.retryInitialDelay, "upstream-retry-initial-delay", router.DefaultUpstreamRetryInitialDelay, "First dial retry delay, doubled per retry.")
	flag.DurationVar(&o.retryMaxDelay, "upstream-retry-max-delay", router.DefaultUpstreamRetryMaxDelay, "Cap of the dial retry delay.")
	flag.BoolVar(&o.accessLog, "access-log", true, "Log one structured line per proxied request.")
	flag.BoolVar(&o.enableTracing, "enable-tracing", false, "Record a server span per proxied request and pass W3C trace context upstream, exported over OTLP/HTTP per the OTEL_* environment; on by default when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.")
	flag.BoolVar(&o.activityTracking, "activity-tracking", false, "Record requests to Sandboxes annotated "+agentsv1beta1.IdleTimeoutAnnotation+" in their "+agentsv1beta1.LastActivityAnnotation+" annotation (at most one write per idle window per Sandbox), so idle auto-suspend spares sandboxes in use. Needs patch on sandboxes (manifests/components/router-wake-idle); the router refuses to start without it.")

	flag.StringVar(&o.authzMode, "authz-mode", router.AuthzModeAllowAll, "allow-all, tokenreview, scoped-token or subjectaccessreview.")
	flag.DurationVar(&o.trTTL, "authz-tokenreview-ttl", router.DefaultTokenReviewTTL, "How long TokenReview and SubjectAccessReview verdicts are cached; > 0.")
	flag.IntVar(&o.trCacheSize, "authz-tokenreview-cache-size", router.DefaultTokenReviewCacheSize, "Size of each verdict cache; > 0.")
	flag.BoolVar(&o.trRequireToken, "authz-tokenreview-require-token", true, "In tokenreview mode, answer 401 to requests without a bearer token; false lets them reach every sandbox.")
	flag.StringVar(&o.trAudiences, "authz-tokenreview-audiences", "", "Comma-separated audiences a token must be bound to (TokenReview spec.audiences); empty accepts the API server's own audience, i.e. full API tokens.")
	flag.StringVar(&o.trScope, "authz-tokenreview-scope", router.TokenReviewScopeNamespace, "tokenreview mode: namespace (a ServiceAccount reaches its own namespace's sandboxes; other principals are refused) or cluster (any authenticated principal reaches every sandbox).")
	flag.BoolVar(&o.trAllowOpaque, "authz-tokenreview-allow-opaque-tokens", false, "Submit bearer tokens that are not JWTs to TokenReview (static-token or webhook authenticators); by default they are refused without an API call.")
	flag.Float64Var(&o.reviewQPS, "authz-review-qps", router.DefaultReviewQPS, "TokenReview/SubjectAccessReview calls per second for tokens not in the cache, on a client of their own; over budget answers 503; > 0.")
	flag.IntVar(&o.reviewBurst, "authz-review-burst", router.DefaultReviewBurst, "Burst of --authz-review-qps; > 0.")
	flag.StringVar(&o.scopedSecretFile, "authz-scoped-token-secret-file", "", "HMAC secret (>= 32 bytes) of scoped-token mode.")
	flag.BoolVar(&o.scopedRequireUID, "authz-scoped-token-require-uid", false, "scoped-token mode: refuse tokens without a uid claim, so a token never outlives the Sandbox it was minted for.")
	flag.StringVar(&o.wakeAuthz, "wake-authz", router.WakeAuthzRBAC, "Who may resume a suspended Sandbox annotated agents.x-k8s.io/wake-on-request=true by sending it a request: rbac (callers allowed update on that Sandbox by a SubjectAccessReview; tokenreview and subjectaccessreview modes only), proxy (whoever may proxy to it) or none. Resuming needs the manifests/components/router-wake-idle RBAC.")
	flag.DurationVar(&o.wakeTimeout, "wake-timeout", router.DefaultWakeTimeout, "Longest a request is held for its Sandbox to resume, within --proxy-timeout and X-Sandbox-Timeout; > 0.")
	flag.Parse()

	if o.showVersion {
		fmt.Print(version.Get().Banner(binaryName))
		return
	}
	applyEnv(&o)
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration: %v\n", binaryName, err)
		os.Exit(2)
	}
	ctx := signals.SetupSignalHandler()
	if err := run(ctx, o); err != nil {
		var cfgErr configError
		klog.FromContext(ctx).Error(err, "Router failed")
		if errors.As(err, &cfgErr) {
			klog.FlushAndExit(klog.ExitFlushTimeout, 2)
		}
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

// configError marks failures caused by the configuration (exit code 2)
// rather than the environment.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// applyEnv applies PROXY_TIMEOUT_SECONDS and CLUSTER_DOMAIN where the flag
// was not given; invalid values are ignored, as in the reference.
func applyEnv(o *options) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if v := os.Getenv("PROXY_TIMEOUT_SECONDS"); v != "" && !set["proxy-timeout"] {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && s < float64(1<<62)/float64(time.Second) {
			o.proxyTimeout = time.Duration(s * float64(time.Second))
		}
	}
	if v := os.Getenv("CLUSTER_DOMAIN"); v != "" && !set["cluster-domain"] {
		o.clusterDomain = v
	}
	// runtime.md §1.14: an OTLP endpoint in the environment turns tracing
	// on unless the flag says otherwise.
	if !set["enable-tracing"] && tracing.EndpointConfigured() {
		o.enableTracing = true
	}
}

func (o *options) validate() error {
	errs := []error{o.ServeOptions.Validate()}
	if !o.cacheEnabled {
		errs = append(errs, errors.New("--cache-enabled=false is not supported: every request is resolved from the Pod cache"))
	}
	if o.clusterDomain == "" {
		errs = append(errs, errors.New("--cluster-domain must not be empty"))
	}
	if o.proxyTimeout <= 0 || o.respHeaderTimeout <= 0 {
		errs = append(errs, errors.New("--proxy-timeout and --response-header-timeout must be > 0"))
	}
	if o.maxBodyBytes < 0 {
		errs = append(errs, errors.New("--max-request-body-bytes must be >= 0"))
	}
	if o.maxRespHeaderBytes <= 0 || o.MaxRequestHeaderBytes <= 0 {
		errs = append(errs, errors.New("--max-response-header-bytes and --max-request-header-bytes must be > 0"))
	}
	if o.maxInflight < 0 || o.maxInflightClient < 0 || o.writeTimeout < 0 || o.tunnelIdleTimeout < 0 {
		errs = append(errs, errors.New("--max-inflight-requests, --max-inflight-requests-per-client, --write-timeout and --tunnel-idle-timeout must be >= 0"))
	}
	if o.retries < 0 || o.retryInitialDelay <= 0 || o.retryMaxDelay < o.retryInitialDelay {
		errs = append(errs, errors.New("--upstream-max-retries must be >= 0 and 0 < --upstream-retry-initial-delay <= --upstream-retry-max-delay"))
	}
	if o.wakeTimeout <= 0 {
		errs = append(errs, errors.New("--wake-timeout must be > 0"))
	}
	switch o.wakeAuthz {
	case router.WakeAuthzRBAC, router.WakeAuthzProxy, router.WakeAuthzNone:
	default:
		errs = append(errs, fmt.Errorf("--wake-authz must be %s, %s or %s", router.WakeAuthzRBAC, router.WakeAuthzProxy, router.WakeAuthzNone))
	}
	if o.qps <= 0 || o.burst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be > 0"))
	}
	switch o.authzMode {
	case router.AuthzModeAllowAll:
	case router.AuthzModeTokenReview, router.AuthzModeSubjectAccessReview:
		if o.trTTL <= 0 || o.trCacheSize <= 0 {
			errs = append(errs, errors.New("--authz-tokenreview-ttl and --authz-tokenreview-cache-size must be > 0"))
		}
		if o.reviewQPS <= 0 || o.reviewBurst <= 0 {
			errs = append(errs, errors.New("--authz-review-qps and --authz-review-burst must be > 0"))
		}
		if o.authzMode == router.AuthzModeTokenReview && o.trScope != router.TokenReviewScopeNamespace && o.trScope != router.TokenReviewScopeCluster {
			errs = append(errs, fmt.Errorf("--authz-tokenreview-scope must be %s or %s", router.TokenReviewScopeNamespace, router.TokenReviewScopeCluster))
		}
	case router.AuthzModeScopedToken:
		if o.scopedSecretFile == "" {
			errs = append(errs, errors.New("--authz-mode=scoped-token requires --authz-scoped-token-secret-file"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown --authz-mode %q", o.authzMode))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	v := version.Get()
	logger.Info("Starting", "binary", binaryName, "version", v.GitVersion, "revision", v.GitCommit, "authzMode", o.authzMode)

	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	// Protobuf for the Pod watch, as kube-controller-manager does: the
	// router's cache decodes every Pod change in the cluster.
	kube, err := kubernetes.NewForConfig(clientconn.ProtobufConfig(rest.AddUserAgent(cfg, binaryName)))
	if err != nil {
		return fmt.Errorf("building Kubernetes client: %w", err)
	}
	agents, err := versioned.NewForConfig(rest.AddUserAgent(cfg, binaryName))
	if err != nil {
		return fmt.Errorf("building agent-sandbox client: %w", err)
	}
	// Reviews get a client of their own: its calls never wait behind the
	// cache's, nor the cache's behind a flood of unknown tokens. It has no
	// client-side limiter (QPS < 0): the authorizer's own limiter refuses
	// at once (503) instead of queueing requests.
	reviewCfg := rest.CopyConfig(cfg)
	reviewCfg.QPS, reviewCfg.Burst = -1, 0
	reviewKube, err := kubernetes.NewForConfig(clientconn.ProtobufConfig(rest.AddUserAgent(reviewCfg, binaryName+"/authz")))
	if err != nil {
		return fmt.Errorf("building Kubernetes review client: %w", err)
	}
	authz, err := authorizer(o, reviewKube)
	if err != nil {
		return configError{err}
	}
	var tracer trace.Tracer
	if o.enableTracing {
		p, err := tracing.New(ctx, tracing.Config{ServiceName: binaryName,
			ErrorHandler: func(err error) { logger.Error(err, "OpenTelemetry") }})
		if err != nil {
			return configError{fmt.Errorf("--enable-tracing: %w", err)}
		}
		defer func() {
			// Flush what is queued, within a bound: a collector that does
			// not answer must not hold the exit up.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracing.DefaultInitTimeout)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				logger.Error(err, "Flushing spans at exit")
			}
		}()
		tracer = p.Tracer("github.com/agentsandbox/agent-sandbox/router")
		logger.Info("Tracing on", "endpoint", p.Endpoint())
	}

	if o.activityTracking {
		checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := router.CheckActivityRights(checkCtx, reviewKube, o.cacheNamespace)
		cancel()
		if err != nil {
			return configError{err}
		}
	}
	r, err := router.New(router.Options{
		KubeClient:                   kube,
		AgentsClient:                 agents,
		CacheNamespace:               o.cacheNamespace,
		DNSFallback:                  o.dnsFallback,
		ClusterDomain:                o.clusterDomain,
		AllowLoopbackPodIP:           o.allowLoopbackPodIP,
		ProxyTimeout:                 o.proxyTimeout,
		ResponseHeaderTimeout:        o.respHeaderTimeout,
		MaxRequestBodyBytes:          o.maxBodyBytes,
		MaxResponseHeaderBytes:       o.maxRespHeaderBytes,
		MaxInflightRequests:          o.maxInflight,
		MaxInflightRequestsPerClient: o.maxInflightClient,
		WriteTimeout:                 o.writeTimeout,
		TunnelIdleTimeout:            o.tunnelIdleTimeout,
		UpstreamMaxRetries:           o.retries,
		UpstreamRetryInitialDelay:    o.retryInitialDelay,
		UpstreamRetryMaxDelay:        o.retryMaxDelay,
		Authorizer:                   authz,
		WakeAuthz:                    o.wakeAuthz,
		WakeTimeout:                  o.wakeTimeout,
		AccessLog:                    o.accessLog,
		ActivityTracking:             o.activityTracking,
		Logger:                       logger,
		Tracer:                       tracer,
	})
	if err != nil {
		return configError{err}
	}
	ls, err := router.Listen(o.ServeOptions)
	if err != nil {
		return err
	}
	return r.Run(ctx, ls, o.ServeOptions)
}

// restConfig: an explicit kubeconfig wins; otherwise in-cluster config,
// and the default kubeconfig only when not running in a Pod, so a
// misconfigured Pod fails instead of picking up some stray file.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("loading in-cluster config: %w", err)
	}
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no in-cluster config and no usable kubeconfig: %w", err)
	}
	return cfg, nil
}

func authorizer(o options, kube kubernetes.Interface) (router.Authorizer, error) {
	tr := router.TokenReviewOptions{
		Client:            kube,
		TTL:               o.trTTL,
		CacheSize:         o.trCacheSize,
		AllowMissingToken: !o.trRequireToken,
		AllowOpaqueTokens: o.trAllowOpaque,
		Scope:             o.trScope,
		ReviewQPS:         float32(o.reviewQPS),
		ReviewBurst:       o.reviewBurst,
	}
	for a := range strings.SplitSeq(o.trAudiences, ",") {
		if a = strings.TrimSpace(a); a != "" {
			tr.Audiences = append(tr.Audiences, a)
		}
	}
	switch o.authzMode {
	case router.AuthzModeTokenReview:
		return router.NewTokenReviewAuthorizer(tr)
	case router.AuthzModeSubjectAccessReview:
		return router.NewSubjectAccessReviewAuthorizer(tr)
	case router.AuthzModeScopedToken:
		secret, err := router.LoadScopedTokenSecret(o.scopedSecretFile)
		if err != nil {
			return nil, err
		}
		var opts []router.ScopedTokenOption
		if o.scopedRequireUID {
			opts = append(opts, router.RequireScopedTokenUID())
		}
		return router.NewScopedTokenAuthorizer(secret, nil, opts...)
	}
	return router.AllowAll(), nil
}
