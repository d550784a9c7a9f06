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
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/certreload"
)

// Serving defaults (§1.2, §1.4, §1.11).
const (
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultCacheSyncTimeout  = 60 * time.Second
	DefaultTLSReloadInterval = certreload.DefaultInterval
	readHeaderTimeout        = 10 * time.Second
	idleTimeout              = 120 * time.Second

	DefaultMaxConnections          = 4096
	DefaultMaxConnectionsPerClient = 512
	DefaultMaxRequestHeaderBytes   = 64 << 10
)

// ServeOptions configures the listeners of Run. An empty address disables
// that listener; at least one proxy listener is required.
type ServeOptions struct {
	HTTPAddr    string
	HTTPSAddr   string
	MetricsAddr string
	ProbeAddr   string
	// TLSCertFile and TLSKeyFile (PEM) serve HTTPSAddr; they are re-read
	// when they change, checked every TLSReloadInterval.
	TLSCertFile, TLSKeyFile string
	TLSReloadInterval       time.Duration
	// ShutdownTimeout is the drain budget shared by all listeners.
	ShutdownTimeout time.Duration
	// CacheSyncTimeout bounds the wait for the initial Pod LIST; 0 means
	// 60s. Startup fails beyond it (usually missing RBAC).
	CacheSyncTimeout time.Duration
	// MaxConnections bounds the connections each proxy listener holds
	// open (further clients wait in the kernel's backlog);
	// MaxConnectionsPerClient bounds them per client IP (the excess is
	// closed at once). 0 disables either.
	MaxConnections          int
	MaxConnectionsPerClient int
	// MaxRequestHeaderBytes caps a client's request headers on the proxy
	// listeners (431 beyond); 0 means DefaultMaxRequestHeaderBytes.
	MaxRequestHeaderBytes int
}

// Validate checks the listener configuration.
func (o *ServeOptions) Validate() error {
	var errs []error
	if o.HTTPAddr == "" && o.HTTPSAddr == "" {
		errs = append(errs, errors.New("at least one of --http-bind-address and --https-bind-address is required"))
	}
	if o.HTTPSAddr != "" && (o.TLSCertFile == "" || o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--https-bind-address requires --tls-cert-file and --tls-key-file"))
	}
	if o.ShutdownTimeout < 0 || o.CacheSyncTimeout < 0 || o.TLSReloadInterval < 0 {
		errs = append(errs, errors.New("shutdown, cache sync and TLS reload intervals must be >= 0"))
	}
	if o.MaxConnections < 0 || o.MaxConnectionsPerClient < 0 || o.MaxRequestHeaderBytes < 0 {
		errs = append(errs, errors.New("--max-connections, --max-connections-per-client and --max-request-header-bytes must be >= 0"))
	}
	return errors.Join(errs...)
}

// Listeners are the router's bound sockets; nil fields are disabled.
type Listeners struct {
	HTTP, HTTPS, Metrics, Probe net.Listener
}

// Listen binds every configured listener before anything is served, so a
// port conflict aborts startup instead of leaving a half-working router.
func Listen(o ServeOptions) (*Listeners, error) {
	ls := &Listeners{}
	for _, b := range []struct {
		addr string
		dst  *net.Listener
		name string
	}{
		{o.HTTPAddr, &ls.HTTP, "http"},
		{o.HTTPSAddr, &ls.HTTPS, "https"},
		{o.MetricsAddr, &ls.Metrics, "metrics"},
		{o.ProbeAddr, &ls.Probe, "health probe"},
	} {
		if b.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", b.addr)
		if err != nil {
			ls.Close()
			return nil, fmt.Errorf("binding %s listener %s: %w", b.name, b.addr, err)
		}
		*b.dst = l
	}
	return ls, nil
}

// Close closes every bound listener.
func (ls *Listeners) Close() {
	for _, l := range []net.Listener{ls.HTTP, ls.HTTPS, ls.Metrics, ls.Probe} {
		if l != nil {
			_ = l.Close()
		}
	}
}

type namedServer struct {
	name string
	srv  *http.Server
	l    net.Listener
	tls  bool
}

// Run serves until ctx ends, then drains: readiness flips to 503
// "draining", every server shuts down concurrently within
// o.ShutdownTimeout, and in-flight requests (upgraded connections
// included) get what is left of that budget. Probes and metrics are served
// from the start; the proxy listeners only once the Pod cache has synced.
// Run owns ls and closes it.
func (r *Router) Run(ctx context.Context, ls *Listeners, o ServeOptions) error {
	defer ls.Close()
	if err := o.Validate(); err != nil {
		return err
	}
	if (ls.HTTP == nil) != (o.HTTPAddr == "") || (ls.HTTPS == nil) != (o.HTTPSAddr == "") {
		return errors.New("listeners do not match the serve options")
	}
	if o.CacheSyncTimeout == 0 {
		o.CacheSyncTimeout = DefaultCacheSyncTimeout
	}
	if o.TLSReloadInterval == 0 {
		o.TLSReloadInterval = DefaultTLSReloadInterval
	}
	if o.MaxRequestHeaderBytes == 0 {
		o.MaxRequestHeaderBytes = DefaultMaxRequestHeaderBytes
	}
	logger := r.logger
	errLog := log.New(logWriter{logger}, "", 0)

	var tlsConfig *tls.Config
	if ls.HTTPS != nil {
		cr, err := certreload.New(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return err
		}
		go cr.Run(klog.NewContext(ctx, logger), o.TLSReloadInterval, func(err error) {
			result := "success"
			if err != nil {
				result = "failure"
			}
			r.metrics.CertReloads.WithLabelValues(result).Inc()
		})
		tlsConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: cr.GetCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		}
	}

	serverErr := make(chan error, 4)
	var servers []namedServer
	serve := func(s namedServer) {
		servers = append(servers, s)
		go func() {
			logger.Info("Serving", "listener", s.name, "address", s.l.Addr().String())
			var err error
			if s.tls {
				err = s.srv.ServeTLS(s.l, "", "")
			} else {
				err = s.srv.Serve(s.l)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				serverErr <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, ErrorLog: errLog}
	}
	if ls.Probe != nil {
		serve(namedServer{name: "health probe", srv: newServer(r.ProbeHandler()), l: ls.Probe})
	}
	if ls.Metrics != nil {
		serve(namedServer{name: "metrics", srv: newServer(r.MetricsHandler()), l: ls.Metrics})
	}

	r.Start(ctx)
	syncCtx, cancel := context.WithTimeout(ctx, o.CacheSyncTimeout)
	synced := r.WaitForCacheSync(syncCtx)
	cancel()
	if !synced {
		r.shutdown(servers, o.ShutdownTimeout)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("pod cache did not sync within %s; does the router's ServiceAccount have list and watch on pods and sandboxes.agents.x-k8s.io?", o.CacheSyncTimeout)
	}
	logger.Info("Pod cache synced", "sandboxes", r.cache.Len())

	// The proxy listeners face every client: bounded connections and
	// request headers. Write deadlines are per write, in serveProxy.
	rejectConn := r.metrics.Rejections.WithLabelValues(limitConnectionsPerClient)
	newProxyServer := func() *http.Server {
		s := newServer(r.Handler())
		s.MaxHeaderBytes = o.MaxRequestHeaderBytes
		return s
	}
	limit := func(l net.Listener) net.Listener {
		return newLimitListener(l, o.MaxConnections, o.MaxConnectionsPerClient, rejectConn.Inc)
	}
	if ls.HTTP != nil {
		serve(namedServer{name: "http", srv: newProxyServer(), l: limit(ls.HTTP)})
	}
	if ls.HTTPS != nil {
		s := newProxyServer()
		s.TLSConfig = tlsConfig
		serve(namedServer{name: "https", srv: s, l: limit(ls.HTTPS), tls: true})
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("Shutting down", "timeout", o.ShutdownTimeout)
	case runErr = <-serverErr:
	}
	r.shutdown(servers, o.ShutdownTimeout)
	return runErr
}

func (r *Router) shutdown(servers []namedServer, timeout time.Duration) {
	r.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if err := s.srv.Shutdown(ctx); err != nil {
				r.logger.Info("Listener did not drain in time", "listener", s.name, "err", err)
				_ = s.srv.Close()
			}
		})
	}
	wg.Wait()
	// Shutdown does not track hijacked (upgraded) connections; give them
	// what is left of the budget.
	for r.inflight.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := r.inflight.Load(); n > 0 {
		r.logger.Info("Abandoning requests still in flight after the shutdown timeout", "requests", n)
	}
	// Last, once no request adds activity: within what is left of the
	// budget.
	r.FlushActivity(ctx)
	r.CloseIdleConnections()
}

// logWriter sends net/http's server errors (TLS handshake failures and the
// like) to klog at V(2) instead of stderr.
type logWriter struct{ logger klog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.V(2).Info("HTTP server error", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
