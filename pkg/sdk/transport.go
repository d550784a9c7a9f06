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

package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// Router header names, spelled as in the router contract. They are set on
// the header map directly so the wire carries this spelling; receivers
// compare case-insensitively either way.
const (
	HeaderSandboxID        = "X-Sandbox-ID"
	HeaderSandboxNamespace = "X-Sandbox-Namespace"
	HeaderSandboxPort      = "X-Sandbox-Port"
	HeaderSandboxPodIP     = "X-Sandbox-Pod-IP"
	HeaderSandboxTimeout   = "X-Sandbox-Timeout"
	HeaderRequestID        = "X-Request-ID"
)

// request describes one runtime API call.
type request struct {
	op       string // names the operation in errors, e.g. "read"
	method   string
	endpoint string // path below the base URL, already escaped, no leading "/"
	// body returns a fresh body for every attempt, so retries resend it
	// from the start; nil means no body.
	body          func() io.Reader
	contentLength int64
	contentType   string
	attempts      int
	// attemptTimeout bounds one attempt up to the response headers.
	attemptTimeout time.Duration
}

// callContext applies the call's total timeout: WithTimeout if given, else
// the client's request timeout when ctx has no deadline. floor raises the
// latter for long commands.
func (s *Sandbox) callContext(ctx context.Context, cc callConfig, floor time.Duration) (context.Context, context.CancelFunc) {
	if cc.timeout > 0 {
		return context.WithTimeout(ctx, cc.timeout)
	}
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, max(s.client.cfg.requestTimeout, floor))
}

// do sends r, retrying as r.attempts allows: on transport errors and on
// 500, 502, 503 and 504, with a backoff between attempts; ctx aborts at once.
// Any other non-2xx is an *HTTPError and final, except the router's 404 for
// this sandbox shortly after the handle saw it Ready (routerMiss): that is
// resent for any operation, without counting as an attempt.
//
// With a handle func, do calls it on the 2xx response and closes the body; a
// failure to read the body is retried like a transport error. Without one,
// do returns the open 2xx response and the caller closes it.
func (s *Sandbox) do(ctx context.Context, r request, handle func(*http.Response) error) (*http.Response, error) {
	attempts := max(r.attempts, 1)
	reqID := newRequestID()
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(AttrRequestID, reqID))
	logger := klog.FromContext(ctx).WithValues("op", r.op, "requestID", reqID)
	var lastErr error
	settlePause, settling := routeSettleInitialPause, false
	for i := 0; i < attempts; i++ {
		if i > 0 && !settling {
			if err := sleepCtx(ctx, s.client.retryBackoff(i)); err != nil {
				return nil, ctxError(ctx, lastErr)
			}
			logger.V(4).Info("Retrying runtime request", "attempt", i+1, "err", lastErr)
		}
		settling = false
		resp, retryable, err := s.attempt(ctx, r, reqID)
		if err == nil {
			if handle == nil {
				return resp, nil
			}
			err = handle(resp)
			_ = resp.Body.Close()
			if err == nil {
				return nil, nil
			}
			// Only a broken body read is worth another attempt;
			// a body that is too large or malformed stays so.
			retryable = !errors.Is(err, ErrResponseTooLarge) && !errors.Is(err, ErrUnexpectedResponse)
		}
		if ctx.Err() != nil {
			return nil, ctxError(ctx, err)
		}
		if !retryable {
			if s.routerMiss(err) && time.Since(s.readyAt) < routeSettleWindow {
				// The router does not resolve the sandbox yet: its
				// cache lags the Sandbox becoming Ready (or, for a
				// claimed warm member, the takeover that removed its
				// pool label). Nothing reached the sandbox,
				// so any operation may be resent, and this is not an
				// attempt.
				logger.V(4).Info("Router does not resolve the sandbox yet, resending", "err", err)
				if serr := sleepCtx(ctx, settlePause); serr != nil {
					return nil, ctxError(ctx, err)
				}
				settlePause = min(2*settlePause, time.Second)
				settling = true
				i--
				continue
			}
			return nil, err
		}
		lastErr = err
	}
	if attempts == 1 {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempts, lastErr)
}

// attempt sends r once. A 2xx response comes back open; anything else is
// turned into an error, with retryable saying whether do may try again.
func (s *Sandbox) attempt(ctx context.Context, r request, reqID string) (resp *http.Response, retryable bool, err error) {
	u, err := s.url(r.endpoint)
	if err != nil {
		return nil, false, err
	}
	attemptTimeout := r.attemptTimeout
	if attemptTimeout <= 0 {
		attemptTimeout = s.client.cfg.perAttemptTimeout
	}
	// The attempt's context outlives the headers: it also carries the
	// body read, so the timer is stopped once headers arrive and the
	// context is cancelled when the body is closed.
	actx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(attemptTimeout, cancel)

	var body io.Reader
	if r.body != nil {
		body = r.body()
	}
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, false, fmt.Errorf("building request: %w", err)
	}
	if r.body != nil {
		req.ContentLength = r.contentLength
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(r.body()), nil }
	}
	if err := s.setHeaders(ctx, req, r, reqID, attemptTimeout); err != nil {
		timer.Stop()
		cancel()
		return nil, false, err
	}

	resp, err = s.client.http.Do(req)
	timedOut := !timer.Stop()
	if err != nil {
		cancel()
		if timedOut && ctx.Err() == nil {
			err = fmt.Errorf("attempt timed out after %v: %w", attemptTimeout, err)
		}
		return nil, true, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, false, nil
	}
	herr := readHTTPError(resp, r.op)
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return nil, true, herr
	}
	return nil, false, herr
}

// routeSettleWindow is how long after a handle saw its Sandbox Ready the
// router's "Sandbox not found" is taken for cache lag rather than a missing
// sandbox; routeSettleInitialPause is the first pause before resending,
// doubling up to 1 s.
const (
	routeSettleWindow       = 15 * time.Second
	routeSettleInitialPause = 50 * time.Millisecond
)

// routerNotFoundPrefix starts the router's 404 detail for a sandbox it does
// not resolve; the runtime never answers with it.
const routerNotFoundPrefix = "Sandbox not found: "

// routerMiss reports whether err is the router's 404 for this sandbox: the
// router refused before dialling anything.
func (s *Sandbox) routerMiss(err error) bool {
	var he *HTTPError
	if s.client.cfg.directPodIP || !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		return false
	}
	var body struct {
		Detail string `json:"detail"`
	}
	return json.Unmarshal([]byte(he.Body), &body) == nil && body.Detail == routerNotFoundPrefix+s.sandboxName
}

// url builds the request URL. In router mode the endpoint goes below the
// router's base path; in direct mode to the pod IP and the server port.
func (s *Sandbox) url(endpoint string) (string, error) {
	cfg := &s.client.cfg
	if cfg.directPodIP {
		if s.podIP == "" {
			return "", fmt.Errorf("%w: no pod IP recorded for direct mode", ErrNotReady)
		}
		return "http://" + net.JoinHostPort(s.podIP, strconv.Itoa(cfg.serverPort)) + "/" + endpoint, nil
	}
	base := s.client.base
	if base == nil {
		return "", fmt.Errorf("%w: the client was built WithControlPlaneOnly and cannot reach a runtime", ErrInvalidArgument)
	}
	// EscapedPath keeps the router's own prefix as given; the endpoint is
	// escaped already and must reach the wire byte for byte.
	return base.Scheme + "://" + base.Host + strings.TrimSuffix(base.EscapedPath(), "/") + "/" + endpoint, nil
}

// setHeaders adds X-Request-ID always, and the router's target headers and
// the bearer token in router mode only: a sandbox reached directly must
// never see the router credential.
func (s *Sandbox) setHeaders(ctx context.Context, req *http.Request, r request, reqID string, attemptTimeout time.Duration) error {
	cfg := &s.client.cfg
	h := req.Header
	h[HeaderRequestID] = []string{reqID}
	if cfg.userAgent != "" {
		h.Set("User-Agent", cfg.userAgent)
	}
	if r.contentType != "" {
		h.Set("Content-Type", r.contentType)
	}
	injectTraceContext(ctx, propagation.HeaderCarrier(h))
	if cfg.directPodIP {
		// No router between us and the Pod to set the warm claim's env;
		// the caller reaches the runtime anyway, so this grants nothing.
		if s.envHeader != "" && cfg.serverPort == s.envPort {
			h[warmenv.Header] = []string{s.envHeader}
		}
		return nil
	}
	h[HeaderSandboxID] = []string{s.sandboxName}
	h[HeaderSandboxNamespace] = []string{s.namespace}
	h[HeaderSandboxPort] = []string{strconv.Itoa(cfg.serverPort)}
	if t := sandboxTimeout(ctx, attemptTimeout); t != "" {
		h[HeaderSandboxTimeout] = []string{t}
	}
	if s.podIP != "" && !cfg.noPodIPHint {
		h[HeaderSandboxPodIP] = []string{s.podIP}
	}
	if cfg.token != nil {
		// Per attempt, so a token rotated between retries is used.
		tok, err := cfg.token(ctx)
		if err != nil {
			return fmt.Errorf("getting bearer token: %w", err)
		}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	return nil
}

// sandboxTimeout is X-Sandbox-Timeout: the smaller of the time left on ctx
// and the attempt timeout, in seconds, shortest decimal form (millisecond
// precision). "" when no time is left, since the router ignores <= 0.
func sandboxTimeout(ctx context.Context, attemptTimeout time.Duration) string {
	d := attemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	d = d.Truncate(time.Millisecond)
	if d <= 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// readHTTPError reads the start of a failed response and closes it.
func readHTTPError(resp *http.Response, op string) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyReadLimit))
	_ = resp.Body.Close()
	return &HTTPError{StatusCode: resp.StatusCode, Body: truncateBody(b), Operation: op}
}

// readLimited reads a whole body of at most limit bytes.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d byte limit", ErrResponseTooLarge, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
	}
	return b, nil
}

// decodeJSON reads a JSON response of at most maxJSONResponseSize bytes.
func decodeJSON(resp *http.Response, v any) error {
	b, err := readLimited(resp, maxJSONResponseSize)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decoding JSON: %w", ErrUnexpectedResponse, err)
	}
	return nil
}

// ctxError reports why ctx ended, with the last failure for context. A
// passed deadline is ErrTimeout.
func ctxError(ctx context.Context, last error) error {
	cause := context.Cause(ctx)
	var err error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", ErrTimeout, cause)
	} else {
		err = cause
	}
	if last != nil {
		return fmt.Errorf("%w (last error: %w)", err, last)
	}
	return err
}

// retryBackoff is the pause before attempt i (i >= 1): none after the first
// failure, then 500 ms doubling up to 8 s, each with ±25 % jitter so that
// many clients hit by one outage do not retry in lockstep.
func retryBackoff(i int) time.Duration {
	if i <= 1 {
		return 0
	}
	d := 500 * time.Millisecond
	for n := 2; n < i && d < 8*time.Second; n++ {
		d *= 2
	}
	d = min(d, 8*time.Second)
	jitter := (mathrand.Float64()*0.5 - 0.25) * float64(d)
	return d + time.Duration(jitter)
}

// newRequestID returns 16 random hex characters.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cancelOnClose releases an attempt's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// pathEscape is enc() of the runtime API: every byte outside A-Z a-z 0-9
// "-_.~" is percent-encoded, "/" included, so a path is always one URL
// segment; "." and ".." alone become %2E and %2E%2E so that neither a client
// library nor a proxy can treat them as dot segments and resolve them away.
func pathEscape(p string) string {
	switch p {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) * 3)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}
