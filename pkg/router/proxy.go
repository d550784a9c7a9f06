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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// Resolution sources, as in §1.4.
const (
	sourceCache     = "cache"
	sourceCacheName = "cache-name"
	sourceDNS       = "dns"
)

// requestState travels in the request context from the handler to Rewrite,
// the transport and the error handler.
type requestState struct {
	target  Target
	nsLabel string
	// host is the dialled host: a cached Pod IP, or a DNS name with the
	// fallback.
	host      string
	source    string
	fromCache bool
	entry     CacheEntry
	// responseHeaderTimeout is this request's, X-Sandbox-Timeout applied.
	responseHeaderTimeout time.Duration
	// tunnel is set on upgrade requests: the idle and write bounds of
	// both sides once the sandbox answers 101. upstreamConn is the
	// connection the transport used, where the upstream side's deadlines
	// go.
	tunnel       *tunnel
	upstreamConn net.Conn
	// held is how long the request waited for its Sandbox to resume; it
	// counts against the request's timeout.
	held time.Duration
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

func (r *Router) serveProxy(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	rec := &responseRecorder{ResponseWriter: w}
	if r.opts.WriteTimeout > 0 {
		// First thing, before any write: the connection still carries the
		// deadline of its previous request, possibly long past.
		rec.dl, _ = w.(writeDeadliner)
		rec.writeTimeout = r.opts.WriteTimeout
		rec.extendWriteDeadline(start)
	}
	if req.URL.Path == "/healthz" {
		writeHealthz(rec)
		return
	}
	var (
		st     *requestState
		client string
		held   bool
		span   trace.Span // nil unless tracing
	)
	if r.opts.Tracer != nil {
		req, span = r.startSpan(req)
	}
	r.metrics.Inflight.Inc()
	n := r.inflight.Add(1)
	defer func() {
		// Deferred so an aborted stream (ReverseProxy panics with
		// http.ErrAbortHandler) is still counted and logged. Logged
		// before the request leaves the in-flight count, which a drain
		// waits for.
		r.observe(req, rec, st, time.Since(start), span)
		if span != nil {
			endSpan(span, rec, st)
		}
		if st != nil {
			// After the request's last metric write.
			r.series.end(st.nsLabel)
		}
		if held {
			r.clients.release(client)
		}
		r.inflight.Add(-1)
		r.metrics.Inflight.Dec()
	}()
	if limit := r.opts.MaxInflightRequests; limit > 0 && n > int64(limit) {
		r.reject(rec, r.rejectInflight)
		return
	}
	if r.clients != nil {
		client = clientIP(req)
		if held = r.clients.acquire(client); !held {
			r.reject(rec, r.rejectInflightPerClient)
			return
		}
	}

	t, rerr := ParseTarget(req.Header, r.opts.AllowLoopbackPodIP)
	if rerr != nil {
		writeDetail(rec, rerr.Status, rerr.Detail)
		return
	}
	st = &requestState{target: t, nsLabel: r.namespaceLabel(t.Namespace)}
	r.series.begin(st.nsLabel)
	if !strings.HasPrefix(req.URL.Path, "/") {
		writeDetail(rec, http.StatusBadRequest, msgInvalidPath)
		return
	}

	grant, err := authorize(req.Context(), r.opts.Authorizer, req, t.Namespace, t.ID)
	if err != nil {
		r.metrics.AuthzDecisions.WithLabelValues(st.nsLabel, "deny").Inc()
		r.deny(rec, req, t, err)
		return
	}
	rerr = r.resolve(st)
	if rerr == errNeedsWake {
		rerr = nil
		if err := r.wake(req, st, grant); err != nil {
			if !errors.As(err, &rerr) {
				r.metrics.AuthzDecisions.WithLabelValues(st.nsLabel, "deny").Inc()
				r.deny(rec, req, t, err)
				return
			}
		}
	}
	if rerr == nil {
		if err := checkConstraint(grant, st); err != nil {
			r.metrics.AuthzDecisions.WithLabelValues(st.nsLabel, "deny").Inc()
			r.deny(rec, req, t, err)
			return
		}
	}
	r.metrics.AuthzDecisions.WithLabelValues(st.nsLabel, "allow").Inc()
	if rerr != nil {
		if rerr.retryAfter {
			rec.Header().Set("Retry-After", "1")
		}
		writeDetail(rec, rerr.Status, rerr.Detail)
		return
	}

	if limit := r.opts.MaxRequestBodyBytes; limit > 0 && req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength > limit {
			writeDetail(rec, http.StatusRequestEntityTooLarge, msgBodyTooLarge)
			return
		}
		// The server's own writer: MaxBytesReader tells it to close the
		// connection rather than drain an oversized body.
		req.Body = http.MaxBytesReader(w, req.Body, limit)
	}

	if r.activity != nil && st.fromCache {
		// Authorized and resolved: activity for as long as it lasts.
		// Requests refused above (401, 403, 404) never count.
		defer r.activity.begin(st.entry)()
	}

	ctx := req.Context()
	st.responseHeaderTimeout = r.opts.ResponseHeaderTimeout
	if t.Timeout > 0 {
		// A long-running call (the legacy /execute answers only when done)
		// announces how long it may take; honour that, within our bound.
		st.responseHeaderTimeout = max(st.responseHeaderTimeout, min(t.Timeout, r.opts.ProxyTimeout))
	}
	if isUpgrade(req.Header) {
		// Upgraded connections live as long as their peers keep them
		// busy: no end-to-end deadline, an idle bound instead.
		if r.opts.TunnelIdleTimeout > 0 || r.opts.WriteTimeout > 0 {
			st.tunnel = newTunnel(r.opts.TunnelIdleTimeout, r.opts.WriteTimeout)
			rec.tunnel = st.tunnel
		}
	} else {
		timeout := r.opts.ProxyTimeout
		if t.Timeout > 0 {
			timeout = min(timeout, t.Timeout)
		}
		// A wake's hold was part of the budget; holdBound kept it inside.
		timeout = max(timeout-st.held, time.Millisecond)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// Request and response bodies stream both ways at once (an upload the
	// sandbox answers while it reads); HTTP/1 servers need an opt-in.
	_ = http.NewResponseController(w).EnableFullDuplex()
	r.proxy.ServeHTTP(rec, req.WithContext(context.WithValue(ctx, stateKey{}, st)))
}

// checkConstraint enforces what the authorizer's grant requires of the
// resolved sandbox. Only a cache entry, which comes from the Sandbox and
// its Pod, can vouch for a UID; a DNS-resolved target never does.
func checkConstraint(c Constraint, st *requestState) error {
	if c.SandboxUID == "" {
		return nil
	}
	if !st.fromCache {
		return fmt.Errorf("%w: the grant names sandbox UID %s, which a DNS-resolved target cannot prove", ErrForbidden, c.SandboxUID)
	}
	if st.entry.SandboxUID != c.SandboxUID {
		return fmt.Errorf("%w: the grant names sandbox UID %s, the sandbox is %s (recreated?)", ErrForbidden, c.SandboxUID, st.entry.SandboxUID)
	}
	return nil
}

// resolve picks the upstream host from the cache, by UID or by name, or
// from DNS when the fallback is on. A Pod-IP hint is never dialled unless
// it is one of the resolved Pod's own addresses.
func (r *Router) resolve(st *requestState) *RequestError {
	t := st.target
	var (
		e  CacheEntry
		ok bool
	)
	if t.UID != "" {
		e, ok = r.cache.ByUID(t.Namespace, typesUID(t.UID))
		// The UID must name the sandbox the caller was authorized for;
		// otherwise a UID would reach around the authorizer.
		ok = ok && e.Namespace == t.Namespace && e.Name == t.ID
		st.source = sourceCache
	} else {
		e, ok = r.cache.ByName(t.Namespace, t.ID)
		st.source = sourceCacheName
	}
	if !ok {
		if info, found := r.cache.WakeInfo(t.Namespace, t.ID); found && info.OptedIn && (t.UID == "" || info.UID == typesUID(t.UID)) {
			// Suspended or starting, and opted in: wake decides, ahead of
			// the DNS fallback, which cannot reach a suspended Sandbox.
			return errNeedsWake
		}
	}
	if ok {
		st.fromCache, st.entry, st.host = true, e, e.PodIP.String()
		if t.PodIP.IsValid() {
			if !e.HasIP(t.PodIP) {
				return &RequestError{Status: http.StatusForbidden, Detail: msgPodIPMismatch}
			}
			st.host = t.PodIP.String() // the caller's choice among the Pod's IPs (dual stack)
		}
		return nil
	}
	if r.opts.DNSFallback {
		if t.PodIP.IsValid() {
			// A Service name cannot vouch for a Pod IP.
			return &RequestError{Status: http.StatusForbidden, Detail: msgPodIPMismatch}
		}
		st.source = sourceDNS
		st.host = t.ID + "." + t.Namespace + ".svc." + r.opts.ClusterDomain
		return nil
	}
	return &RequestError{Status: http.StatusNotFound, Detail: msgNotFound + t.ID}
}

// rewrite builds the upstream request (§1.5). ReverseProxy has already
// removed hop-by-hop headers and inbound X-Forwarded-*/Forwarded.
func (r *Router) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	pr.Out.URL = &url.URL{
		Scheme: "http",
		Host:   net.JoinHostPort(st.host, strconv.Itoa(st.target.Port)),
		// The path goes upstream as the client escaped it: no decoding of
		// %2F or dot segments on the way.
		Path:     pr.In.URL.Path,
		RawPath:  pr.In.URL.RawPath,
		RawQuery: pr.Out.URL.RawQuery,
	}
	pr.Out.Host = ""
	// Credentials are for the router; sandboxes must never see them.
	pr.Out.Header.Del(headerAuthorization)
	// A warm claim's env comes only from the Sandbox the router dials
	// (the cache entry st.host came from), and only to the runtime port
	// its annotation names: a client's copy is dropped on every port and
	// in every mode, so no caller chooses another sandbox's env or reads
	// it through an app on another port. A DNS-resolved target gets none:
	// a Service name does not prove which Pod answers.
	pr.Out.Header.Del(warmenv.Header)
	if st.fromCache && st.entry.EnvHeader != "" && st.target.Port == st.entry.EnvPort {
		pr.Out.Header[warmenv.Header] = []string{st.entry.EnvHeader}
	}
	if isUpgrade(pr.In.Header) {
		// code-server and Jupyter reject Origin != Host on WebSockets.
		pr.Out.Header.Del("Origin")
	}
	pr.SetXForwarded()
	if r.opts.Tracer != nil {
		// The server span's context replaces whatever the client sent,
		// which is the span's parent (§1.5).
		tracing.Propagator.Inject(pr.In.Context(), propagation.HeaderCarrier(pr.Out.Header))
	}
}

// modifyResponse refuses a status code net/http cannot relay: below 100
// ReverseProxy's WriteHeader panics (the client gets a reset connection
// and the router a stack trace per request), and above 599 no client
// knows what it means. http.Transport never returns a 1xx other than 101
// as final, so 100-599 is what passes.
func (r *Router) modifyResponse(res *http.Response) error {
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return fmt.Errorf("%w: %d", errInvalidStatus, res.StatusCode)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// The sandbox's side of the tunnel; the client's is wrapped in
		// responseRecorder.Hijack.
		if st := stateFrom(res.Request.Context()); st != nil && st.tunnel != nil && st.upstreamConn != nil {
			if rwc, ok := res.Body.(io.ReadWriteCloser); ok {
				res.Body = &tunnelConn{Conn: st.upstreamConn, rw: rwc, t: st.tunnel}
			}
		}
	}
	return nil
}

// reject answers a request refused by a concurrency limit.
func (r *Router) reject(w http.ResponseWriter, counter prometheus.Counter) {
	counter.Inc()
	w.Header().Set("Retry-After", "1")
	writeDetail(w, http.StatusServiceUnavailable, msgOverloaded)
}

// proxyError answers an upstream failure: 413 for an oversized body, 504
// for timeouts, 502 for everything else.
func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	st := stateFrom(req.Context())
	id, nsLabel := "", noNamespace
	if st != nil {
		id, nsLabel = st.target.ID, st.nsLabel
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeDetail(w, http.StatusRequestEntityTooLarge, msgBodyTooLarge)
		return
	}
	if errors.Is(req.Context().Err(), context.Canceled) {
		// The client went away; nobody reads this answer and it is not the
		// sandbox's fault.
		r.logger.V(4).Info("Client canceled the request", "sandbox", klogRef(st))
		writeDetail(w, http.StatusBadGateway, msgBadGateway+id)
		return
	}
	reason, timeout := classify(req.Context(), err)
	r.metrics.UpstreamErrors.WithLabelValues(nsLabel, reason).Inc()
	r.logger.V(2).Info("Upstream request failed", "sandbox", klogRef(st), "reason", reason, "err", err)
	if timeout {
		writeDetail(w, http.StatusGatewayTimeout, msgGatewayTimeout+id)
		return
	}
	writeDetail(w, http.StatusBadGateway, msgBadGateway+id)
}

// deny answers an authorization failure without revealing its detail.
func (r *Router) deny(w http.ResponseWriter, req *http.Request, t Target, err error) {
	r.logger.V(2).Info("Request denied", "sandbox", klog.KRef(t.Namespace, t.ID), "clientIP", clientIP(req), "reason", err.Error())
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set(headerWWWAuthenticate, "Bearer")
		writeDetail(w, http.StatusUnauthorized, msgUnauthenticated)
	case errors.Is(err, ErrForbidden):
		writeDetail(w, http.StatusForbidden, msgForbidden)
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeDetail(w, http.StatusServiceUnavailable, msgAuthzUnavailable)
	default:
		r.logger.Error(err, "Authorization failed", "sandbox", klog.KRef(t.Namespace, t.ID))
		writeDetail(w, http.StatusInternalServerError, msgInternal)
	}
}

// recheck runs after a cached Pod IP failed to dial in a way that says the
// host may be gone. It never evicts: the dial failed for a port and a path
// the client chose (a port a NetworkPolicy drops times out just like a dead
// Pod), so the entry is only re-derived from the informers' stores, which
// the API server alone changes.
func (r *Router) recheck(st *requestState) {
	if r.cache.Recheck(st.entry.Namespace, st.entry.Name) {
		r.metrics.CacheInvalidated.WithLabelValues(st.nsLabel).Inc()
		r.logger.V(2).Info("Sandbox entry changed on a re-check after a failed dial", "sandbox", klog.KRef(st.entry.Namespace, st.entry.Name), "podIP", st.entry.PodIP)
	}
}

// namespaceLabel keeps metric label values bounded: a namespace becomes a
// label value only while a cached sandbox lives there.
func (r *Router) namespaceLabel(ns string) string {
	if r.cache.HasNamespace(ns) {
		return ns
	}
	return noNamespace
}

// observe records metrics and the access log line of one request.
func (r *Router) observe(req *http.Request, rec *responseRecorder, st *requestState, d time.Duration, span trace.Span) {
	code := rec.code()
	nsLabel, id, ns := noNamespace, "", ""
	if st != nil {
		nsLabel, id, ns = st.nsLabel, st.target.ID, st.target.Namespace
	}
	method := methodLabel(req.Method)
	cl := codeLabel(code)
	r.metrics.Requests.WithLabelValues(method, cl, nsLabel).Inc()
	r.metrics.RequestDuration.WithLabelValues(method, cl, nsLabel).Observe(d.Seconds())
	if !r.opts.AccessLog {
		return
	}
	// Never the query string (it may carry tokens) nor any header value
	// besides the user agent. One slice with room for the trace fields:
	// as many allocations with tracing off as the argument list had.
	kv := make([]any, 0, 22)
	kv = append(kv,
		"method", req.Method,
		"path", req.URL.Path,
		"status", code,
		"duration_ms", float64(d.Microseconds())/1000,
		"client_ip", clientIP(req),
		"sandbox_id", id,
		"sandbox_namespace", ns,
		"bytes_out", rec.written,
		"user_agent", req.UserAgent(),
	)
	if span != nil {
		sc := span.SpanContext()
		kv = append(kv, "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	r.accessLog.Info("request", kv...)
}

func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

func klogRef(st *requestState) klog.ObjectRef {
	if st == nil {
		return klog.ObjectRef{}
	}
	return klog.KRef(st.target.Namespace, st.target.ID)
}

// isUpgrade is ReverseProxy's test: Connection names "upgrade" and Upgrade
// is set.
func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// writeDeadliner is the server's ResponseWriter (HTTP/1 and HTTP/2 alike);
// asserted once per request instead of going through a
// ResponseController per write.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// responseRecorder captures status and size for metrics and the access
// log while passing Flush and Hijack through (ReverseProxy needs both).
// It also moves the connection's write deadline ahead before writes, so a
// client that stops reading is cut off writeTimeout after its last
// progress instead of pinning the request forever.
//
// And it flushes every write that leaves a body of known length
// incomplete, so a sandbox trickling a Content-Length body reaches the
// client as it goes; the write that completes the body is not flushed,
// since the server sends it together with the headers when the handler
// returns: one write syscall for a small response instead of two.
// (ReverseProxy flushes bodies of unknown length and SSE itself.)
type responseRecorder struct {
	http.ResponseWriter
	status  int
	written int64
	// length is the Content-Length of the final response, -1 when unknown.
	length int64

	dl           writeDeadliner // nil: no write deadlines
	writeTimeout time.Duration
	// refreshAt is when the deadline is next moved: deadlines move at
	// most every writeTimeout/4, so a write never starts with less than
	// three quarters of the timeout ahead and a streamed response does
	// not pay for a timer update per chunk.
	refreshAt time.Time
	tunnel    *tunnel
}

func (w *responseRecorder) extendWriteDeadline(now time.Time) {
	if w.dl == nil || now.Before(w.refreshAt) {
		return
	}
	_ = w.dl.SetWriteDeadline(now.Add(w.writeTimeout))
	w.refreshAt = now.Add(w.writeTimeout / 4)
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.dl != nil {
		w.extendWriteDeadline(time.Now())
	}
	// 1xx informational responses may precede the final one.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.length = -1
		if cl := w.Header().Get("Content-Length"); cl != "" {
			if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
				w.length = n
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.dl != nil {
		w.extendWriteDeadline(time.Now())
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	if err == nil && w.length >= 0 && w.written < w.length {
		w.Flush()
	}
	return n, err
}

func (w *responseRecorder) Flush() {
	if w.dl != nil {
		w.extendWriteDeadline(time.Now())
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack is only used by ReverseProxy after the sandbox answered 101. The
// client's side of the tunnel gets its idle and write bounds here.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	if w.tunnel != nil {
		if w.tunnel.write > 0 {
			// The 101 goes out through brw, straight to the connection.
			_ = conn.SetWriteDeadline(time.Now().Add(w.tunnel.write))
		}
		w.tunnel.touch()
		conn = &tunnelConn{Conn: conn, rw: conn, t: w.tunnel}
	}
	return conn, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseRecorder) code() int {
	if w.status == 0 {
		// Nothing written: net/http answers 200 for a handler that
		// returns without writing; a panic-aborted stream is logged as 200
		// too, since the client already has that status.
		return http.StatusOK
	}
	return w.status
}
