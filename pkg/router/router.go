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

package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Defaults of Options (§1.10, §1.11).
const (
	DefaultClusterDomain             = "cluster.local"
	DefaultProxyTimeout              = 180 * time.Second
	DefaultResponseHeaderTimeout     = 30 * time.Second
	DefaultDialTimeout               = 30 * time.Second
	DefaultUpstreamMaxRetries        = 3
	DefaultUpstreamRetryInitialDelay = 200 * time.Millisecond
	DefaultUpstreamRetryMaxDelay     = 800 * time.Millisecond
	DefaultMaxResponseHeaderBytes    = 64 << 10
	DefaultMaxInflightRequests       = 2048
	DefaultMaxInflightPerClient      = 256
	DefaultWriteTimeout              = 60 * time.Second
	DefaultTunnelIdleTimeout         = time.Hour
)

// Options configures a Router. Start from DefaultOptions: zero durations
// take their defaults, but a zero UpstreamMaxRetries means no retries.
type Options struct {
	// KubeClient feeds the Pod informer of the cache; required, since
	// every request is resolved from the cache.
	KubeClient kubernetes.Interface
	// AgentsClient feeds the Sandbox informer of the cache; required: a
	// Pod is only routed to when its Sandbox's status vouches for it.
	AgentsClient versioned.Interface
	// CacheNamespace limits the cache to one namespace; empty is all.
	CacheNamespace string
	// CacheResync is the informer resync period; 0 means 10 minutes.
	CacheResync time.Duration

	// DNSFallback routes sandboxes missing from the cache to
	// <id>.<namespace>.svc.<ClusterDomain> (Service-backed sandboxes)
	// instead of answering 404. Whatever the name resolves to, only an
	// address listed in that Sandbox's status.podIPs is dialled.
	DNSFallback   bool
	ClusterDomain string
	// DNSResolver resolves the fallback's names; nil is the system's.
	DNSResolver *net.Resolver
	// AllowLoopbackPodIP admits loopback X-Sandbox-Pod-IP hints.
	AllowLoopbackPodIP bool

	// ProxyTimeout bounds each non-upgrade request end to end, and caps
	// X-Sandbox-Timeout.
	ProxyTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for upstream response headers
	// after the request was sent; X-Sandbox-Timeout raises it (up to
	// ProxyTimeout) for that request.
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds one upstream dial.
	DialTimeout time.Duration
	// MaxRequestBodyBytes caps inbound bodies (413 beyond); 0 is no cap.
	MaxRequestBodyBytes int64
	// MaxResponseHeaderBytes caps the size of a sandbox's response
	// headers (502 beyond); 0 means DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int64

	// MaxInflightRequests bounds the requests in flight, upgraded
	// connections included; beyond it requests are answered 503 with
	// Retry-After. MaxInflightRequestsPerClient does the same per client
	// IP (the TCP peer). 0 disables either.
	MaxInflightRequests          int
	MaxInflightRequestsPerClient int
	// WriteTimeout bounds each write to a client, and on upgraded
	// connections to either peer: a peer that reads nothing for that long
	// is disconnected. 0 disables.
	WriteTimeout time.Duration
	// TunnelIdleTimeout closes an upgraded connection after that long
	// without a byte in either direction. 0 disables.
	TunnelIdleTimeout time.Duration

	// UpstreamMaxRetries is the number of dial retries; 0 disables.
	UpstreamMaxRetries        int
	UpstreamRetryInitialDelay time.Duration
	UpstreamRetryMaxDelay     time.Duration

	// ActivityTracking records requests to Sandboxes opted in to idle
	// auto-suspend (agents.x-k8s.io/idle-timeout) in their last-activity
	// annotation, at most once per idle window per Sandbox. It needs patch
	// on sandboxes (CheckActivityRights).
	ActivityTracking bool
	// Clock drives the activity tracker's timers; nil is the real clock.
	Clock clock.WithDelayedExecution

	// Authorizer decides access; nil means AllowAll.
	Authorizer Authorizer
	// WakeAuthz is who may resume a suspended Sandbox opted into wake on
	// request (WakeAuthzRBAC, WakeAuthzProxy, WakeAuthzNone); empty means
	// WakeAuthzRBAC. Resuming needs patch on sandboxes, which the router
	// has only with manifests/components/router-wake-idle.
	WakeAuthz string
	// WakeTimeout caps how long a request is held for its Sandbox to
	// resume; 0 means DefaultWakeTimeout.
	WakeTimeout time.Duration
	// AccessLog logs one structured line per proxied request.
	AccessLog bool
	// Registry receives the router's metrics; nil means a new private
	// registry from NewRegistry.
	Registry *prometheus.Registry
	// Logger is the router's logger; the zero Logger means klog.Background().
	Logger klog.Logger
	// Tracer, when not nil, records a server span per proxied request and
	// passes its W3C trace context upstream (--enable-tracing); nil is
	// off and costs nothing.
	Tracer trace.Tracer
}

// DefaultOptions returns the documented defaults, without a client.
func DefaultOptions() Options {
	return Options{
		ClusterDomain:                DefaultClusterDomain,
		ProxyTimeout:                 DefaultProxyTimeout,
		ResponseHeaderTimeout:        DefaultResponseHeaderTimeout,
		DialTimeout:                  DefaultDialTimeout,
		UpstreamMaxRetries:           DefaultUpstreamMaxRetries,
		UpstreamRetryInitialDelay:    DefaultUpstreamRetryInitialDelay,
		UpstreamRetryMaxDelay:        DefaultUpstreamRetryMaxDelay,
		MaxResponseHeaderBytes:       DefaultMaxResponseHeaderBytes,
		MaxInflightRequests:          DefaultMaxInflightRequests,
		MaxInflightRequestsPerClient: DefaultMaxInflightPerClient,
		WriteTimeout:                 DefaultWriteTimeout,
		TunnelIdleTimeout:            DefaultTunnelIdleTimeout,
		WakeAuthz:                    WakeAuthzRBAC,
		WakeTimeout:                  DefaultWakeTimeout,
		AccessLog:                    true,
	}
}

func (o *Options) complete() error {
	var errs []error
	if o.KubeClient == nil {
		errs = append(errs, errors.New("a Kubernetes client is required (the router resolves sandboxes from its Pod cache)"))
	}
	if o.AgentsClient == nil {
		errs = append(errs, errors.New("an agent-sandbox client is required (the router resolves sandboxes through their Sandbox objects)"))
	}
	switch o.WakeAuthz {
	case "", WakeAuthzRBAC, WakeAuthzProxy, WakeAuthzNone:
	default:
		errs = append(errs, fmt.Errorf("unknown wake authz %q (want %s, %s or %s)", o.WakeAuthz, WakeAuthzRBAC, WakeAuthzProxy, WakeAuthzNone))
	}
	if o.ProxyTimeout < 0 || o.ResponseHeaderTimeout < 0 || o.DialTimeout < 0 || o.WakeTimeout < 0 {
		errs = append(errs, errors.New("timeouts must be > 0"))
	}
	if o.MaxInflightRequests < 0 || o.MaxInflightRequestsPerClient < 0 || o.WriteTimeout < 0 || o.TunnelIdleTimeout < 0 {
		errs = append(errs, errors.New("in-flight limits, write and tunnel idle timeouts must be >= 0"))
	}
	if o.MaxRequestBodyBytes < 0 || o.MaxResponseHeaderBytes < 0 {
		errs = append(errs, errors.New("max request body and response header bytes must be >= 0"))
	}
	if o.UpstreamMaxRetries < 0 || o.UpstreamRetryInitialDelay < 0 || o.UpstreamRetryMaxDelay < 0 {
		errs = append(errs, errors.New("upstream retries and delays must be >= 0"))
	}
	if o.UpstreamRetryMaxDelay > 0 && o.UpstreamRetryInitialDelay > o.UpstreamRetryMaxDelay {
		errs = append(errs, errors.New("upstream retry initial delay must not exceed the max delay"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	def := DefaultOptions()
	if o.ClusterDomain == "" {
		o.ClusterDomain = def.ClusterDomain
	}
	if o.ProxyTimeout == 0 {
		o.ProxyTimeout = def.ProxyTimeout
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = def.ResponseHeaderTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = def.DialTimeout
	}
	if o.WakeAuthz == "" {
		o.WakeAuthz = def.WakeAuthz
	}
	if o.WakeTimeout == 0 {
		o.WakeTimeout = def.WakeTimeout
	}
	if o.MaxResponseHeaderBytes == 0 {
		o.MaxResponseHeaderBytes = def.MaxResponseHeaderBytes
	}
	if o.UpstreamRetryInitialDelay == 0 {
		o.UpstreamRetryInitialDelay = def.UpstreamRetryInitialDelay
	}
	if o.UpstreamRetryMaxDelay == 0 {
		o.UpstreamRetryMaxDelay = max(def.UpstreamRetryMaxDelay, o.UpstreamRetryInitialDelay)
	}
	if o.Authorizer == nil {
		o.Authorizer = AllowAll()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Registry == nil {
		o.Registry = NewRegistry()
	}
	if o.Logger.GetSink() == nil {
		o.Logger = klog.Background()
	}
	return nil
}

// Router is the sandbox router: a proxy handler, its Pod cache, metrics
// and readiness state.
type Router struct {
	opts      Options
	logger    klog.Logger
	accessLog klog.Logger
	cache     *PodCache
	metrics   *Metrics
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	dialer    *net.Dialer
	handler   http.Handler
	// clients is nil without a per-client in-flight limit.
	clients                 *clientLimiter
	rejectInflight          prometheus.Counter
	rejectInflightPerClient prometheus.Counter

	startOnce sync.Once
	synced    atomic.Bool
	draining  atomic.Bool
	// inflight counts proxied requests, upgraded connections included,
	// so a drain can wait for them.
	inflight atomic.Int64
	// series removes the metric series of namespaces gone idle.
	series *namespaceSeries
	// resumes single-flights the resume patch per Sandbox UID (wake.go).
	resumes flightGroup[types.UID, error]
	// resumed remembers the suspends (UID and spec generation) this
	// replica resumed, so requests that still find that generation
	// Suspended wait for the cache instead of patching again (wake.go).
	resumed expiringLRU[resumedKey, struct{}]
	// activity is nil unless Options.ActivityTracking.
	activity *activityTracker
}

// New builds a Router. Nothing runs until Start (or Run).
func New(opts Options) (*Router, error) {
	if err := opts.complete(); err != nil {
		return nil, fmt.Errorf("router options: %w", err)
	}
	r := &Router{
		opts:      opts,
		logger:    opts.Logger,
		accessLog: opts.Logger.WithName("sandbox-router.access"),
		resumed:   newExpiringLRU[resumedKey, struct{}](resumedCacheSize, time.Now),
	}
	var err error
	r.cache, err = NewPodCache(opts.KubeClient, opts.AgentsClient, PodCacheOptions{
		Namespace: opts.CacheNamespace,
		Resync:    opts.CacheResync,
		Logger:    opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	if r.metrics, err = NewMetrics(opts.Registry); err != nil {
		return nil, fmt.Errorf("registering router metrics: %w", err)
	}
	if opts.MaxInflightRequestsPerClient > 0 {
		r.clients = newClientLimiter(opts.MaxInflightRequestsPerClient)
	}
	if opts.ActivityTracking {
		agents := opts.AgentsClient
		patch := func(ctx context.Context, ns, name string, pt types.PatchType, data []byte) (*agentsv1beta1.Sandbox, error) {
			return agents.AgentsV1beta1().Sandboxes(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{FieldManager: activityFieldManager})
		}
		r.activity = newActivityTracker(opts.Clock, patch, r.metrics.ActivityWrites, r.logger)
		r.cache.observe = r.activity.observe
	}
	r.series = newNamespaceSeries(r.metrics, r.cache.HasNamespace, r.logger)
	r.rejectInflight = r.metrics.Rejections.WithLabelValues(limitInflight)
	r.rejectInflightPerClient = r.metrics.Rejections.WithLabelValues(limitInflightPerClient)
	r.transport, r.dialer = newBaseTransport(opts.DialTimeout, opts.AllowLoopbackPodIP, opts.MaxResponseHeaderBytes)
	// The DNS fallback's check needs the request and the Sandbox store;
	// ControlContext takes precedence over the class-only Control.
	r.dialer.ControlContext = r.guardDial
	r.dialer.Resolver = opts.DNSResolver
	r.proxy = &httputil.ReverseProxy{
		Rewrite:        r.rewrite,
		ModifyResponse: r.modifyResponse,
		Transport: &retryTransport{
			base:         r.transport,
			maxRetries:   opts.UpstreamMaxRetries,
			initialDelay: opts.UpstreamRetryInitialDelay,
			maxDelay:     opts.UpstreamRetryMaxDelay,
			onRetry: func(st *requestState) {
				r.metrics.UpstreamRetries.WithLabelValues(st.nsLabel).Inc()
			},
			onDeadHost: r.recheck,
		},
		// Zero, yet every write reaches the client at once: ReverseProxy
		// itself flushes every write of SSE and of bodies without a
		// Content-Length (chunked output), and responseRecorder flushes
		// every write that leaves a known-length body incomplete. A
		// negative interval would add, per request, a timer goroutine that
		// flushes the headers alone: one more write syscall and a lock
		// race with the body, for nothing a client can use.
		FlushInterval: 0,
		BufferPool:    newBufferPool(),
		ErrorHandler:  r.proxyError,
		ErrorLog:      nil,
	}
	r.handler = http.HandlerFunc(r.serveProxy)
	return r, nil
}

// Handler is the proxy listener's handler: /healthz, everything else
// proxied.
func (r *Router) Handler() http.Handler { return r.handler }

// Cache exposes the Pod cache, for tests and diagnostics.
func (r *Router) Cache() *PodCache { return r.cache }

// Registry is the registry holding the router's metrics.
func (r *Router) Registry() *prometheus.Registry { return r.opts.Registry }

// MetricsHandler serves the registry in the Prometheus text format.
func (r *Router) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.opts.Registry, promhttp.HandlerOpts{Registry: r.opts.Registry})
}

// Start starts the Pod and Sandbox informers and the sweep of idle
// namespaces' metric series; it is idempotent and returns at once. All of
// it stops when ctx ends.
func (r *Router) Start(ctx context.Context) {
	r.startOnce.Do(func() {
		r.cache.Start(ctx.Done())
		go r.series.run(ctx, seriesSweepInterval)
		go func() {
			<-ctx.Done()
			r.cache.Shutdown()
		}()
	})
}

// WaitForCacheSync blocks until the cache holds the initial LISTs, or ctx
// ends; it reports which.
func (r *Router) WaitForCacheSync(ctx context.Context) bool {
	if !r.cache.WaitForSync(ctx) {
		return false
	}
	r.synced.Store(true)
	return true
}

// Ready reports what /readyz answers: cache synced and not draining. Run
// binds every listener before it serves any, so a served probe implies
// bound listeners.
func (r *Router) Ready() bool {
	return r.synced.Load() && !r.draining.Load()
}

// SetDraining flips readiness off for good: the first step of a graceful
// shutdown.
func (r *Router) SetDraining() { r.draining.Store(true) }

// ProbeHandler serves the probe listener: /healthz always 200 and /readyz
// 200 "ok" or 503 "draining"/"not ready".
func (r *Router) ProbeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeHealthz(w) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(headerContentType, "text/plain; charset=utf-8")
		switch {
		case r.draining.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("draining"))
		case !r.Ready():
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready"))
		default:
			_, _ = w.Write([]byte("ok"))
		}
	})
	return mux
}

// FlushActivity writes the activity this replica has seen but not yet
// recorded, and waits for the writes in flight or ctx: the drain's last
// step, so a restart does not lose a window's activity.
func (r *Router) FlushActivity(ctx context.Context) {
	if r.activity != nil {
		r.activity.flush(ctx)
	}
}

// CloseIdleConnections drops pooled upstream connections.
func (r *Router) CloseIdleConnections() { r.transport.CloseIdleConnections() }
