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
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errResponseHeaderTimeout is the cause of an attempt cut off while
// waiting for response headers.
var errResponseHeaderTimeout = errors.New("timed out waiting for upstream response headers")

// errInvalidStatus is a response whose status code no HTTP client could
// take: below 100 (net/http panics writing one) or above 599.
var errInvalidStatus = errors.New("upstream answered an invalid status code")

// errForbiddenAddress is the dial error for an address no sandbox Pod has.
var errForbiddenAddress = errors.New("refusing to dial an address of a class no sandbox pod has")

// dialGuard is the upstream dialer's Control: it sees the address really
// being connected, after DNS, and refuses the classes parsePodIP refuses.
// Cached Pod IPs never fall in them; a name from the DNS fallback can
// (an ExternalName Service is a CNAME to anywhere, the cloud metadata
// endpoint included).
func dialGuard(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !dialableAddr(ap.Addr(), allowLoopback) {
			return fmt.Errorf("%w: %s", errForbiddenAddress, address)
		}
		return nil
	}
}

// newBaseTransport is the upstream transport of §1.11: plain HTTP/1.1 only
// (sandboxes speak nothing else, and HTTP/2 would break upgrades), and no
// environment proxy, so traffic never leaves the cluster through one.
// Every dial goes through dialGuard. Response headers are capped at
// maxHeaderBytes (net/http's default is 10 MiB per response, which lets one
// hostile sandbox exhaust the shared router's memory with a hundred
// concurrent answers). Response header timeouts are per request, in
// retryTransport. The dialer is returned for tests.
func newBaseTransport(dialTimeout time.Duration, allowLoopback bool, maxHeaderBytes int64) (*http.Transport, *net.Dialer) {
	dialer := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: 30 * time.Second,
		Control:   dialGuard(allowLoopback),
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      false,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:           200,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}, dialer
}

// retryTransport retries dial-class failures (nothing was sent, so any
// method is safe to retry) and applies the request's response header
// timeout, measured from the moment the request was fully written.
type retryTransport struct {
	base         http.RoundTripper
	maxRetries   int
	initialDelay time.Duration
	maxDelay     time.Duration
	// onRetry and onDeadHost are called with the request's state; they
	// feed metrics and cache invalidation.
	onRetry    func(*requestState)
	onDeadHost func(*requestState)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateFrom(req.Context())
	var rb *retryableBody
	out := req
	if req.Body != nil && req.Body != http.NoBody {
		// http.Transport closes the body even when the dial fails; the
		// wrapper ignores closes until a connection exists, so the body is
		// still there for the next attempt.
		rb = &retryableBody{ReadCloser: req.Body}
		out = req.WithContext(req.Context())
		out.Body = rb
	}
	delay := t.initialDelay
	for attempt := 0; ; attempt++ {
		resp, err := t.attempt(out, st, rb)
		if err == nil {
			return resp, nil
		}
		if !isDialError(err) || errors.Is(err, errForbiddenAddress) {
			return nil, err
		}
		if st != nil && st.fromCache && isDeadHost(err) && t.onDeadHost != nil {
			t.onDeadHost(st)
		}
		if attempt >= t.maxRetries {
			return nil, err
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			// The deadline ends the retries; the caller hears the dial
			// error, which is what actually went wrong.
			timer.Stop()
			return nil, err
		}
		if st != nil && t.onRetry != nil {
			t.onRetry(st)
		}
		delay = min(delay*2, t.maxDelay)
	}
}

func (t *retryTransport) attempt(req *http.Request, st *requestState, rb *retryableBody) (*http.Response, error) {
	var rht time.Duration
	if st != nil {
		rht = st.responseHeaderTimeout
	}
	var tun *tunnel
	if st != nil {
		tun = st.tunnel
	}
	if rht <= 0 && rb == nil && tun == nil {
		return t.base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	a := &attemptHooks{rht: rht, rb: rb, tun: tun, st: st, cancel: cancel}
	a.trace.GotConn, a.trace.WroteRequest = a.gotConn, a.wroteRequest
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(ctx, &a.trace)))
	a.mu.Lock()
	a.finished = true
	fired := a.timer != nil && !a.timer.Stop()
	a.mu.Unlock()
	if err != nil {
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, errResponseHeaderTimeout) {
			return nil, errResponseHeaderTimeout
		}
		return nil, err
	}
	if fired {
		// Headers and the timer raced; the timer won and the context is
		// already cancelled, so the body is unusable.
		_ = resp.Body.Close()
		return nil, errResponseHeaderTimeout
	}
	// ctx must stay alive while the body (or the upgraded connection)
	// streams; it ends with the inbound request's context.
	return resp, nil
}

// attemptHooks is one attempt's httptrace hooks and their state, in one
// allocation rather than one per captured variable.
type attemptHooks struct {
	trace httptrace.ClientTrace
	rht   time.Duration
	rb    *retryableBody
	tun   *tunnel
	st    *requestState
	// cancel ends the attempt's context; the timer calls it with
	// errResponseHeaderTimeout.
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer
	finished bool
}

func (a *attemptHooks) gotConn(info httptrace.GotConnInfo) {
	if a.rb != nil {
		a.rb.connected.Store(true)
	}
	if a.tun != nil {
		// Called on this goroutine, before RoundTrip returns.
		a.st.upstreamConn = info.Conn
	}
}

func (a *attemptHooks) wroteRequest(httptrace.WroteRequestInfo) {
	if a.rht <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.finished {
		a.timer = time.AfterFunc(a.rht, a.headerTimeout)
	}
}

func (a *attemptHooks) headerTimeout() { a.cancel(errResponseHeaderTimeout) }

// retryableBody shields the inbound body from the transport's close on a
// failed dial. Once a connection exists the transport may have read from
// the body, no retry can happen, and closes go through again so a write
// blocked on the client can be aborted.
type retryableBody struct {
	io.ReadCloser
	connected atomic.Bool
}

func (b *retryableBody) Close() error {
	if b.connected.Load() {
		return b.ReadCloser.Close()
	}
	return nil
}

// isDialError is the retry class of §1.10: DNS failures and any error of
// the dial operation. Nothing has been written when these happen.
func isDialError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// isDeadHost tells a dial failure that says the host is gone (timeout, no
// route, unreachable) from connection refused, which says a live host has
// nothing on that port; only the former invalidates a cache entry.
func isDeadHost(err error) bool {
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		return false
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// classify maps an upstream failure to the reason label and decides
// whether it is a timeout (504) or not (502).
func classify(reqCtx context.Context, err error) (reason string, timeout bool) {
	deadline := errors.Is(reqCtx.Err(), context.DeadlineExceeded)
	switch {
	case errors.Is(err, errResponseHeaderTimeout):
		return reasonTimeout, true
	case isDialError(err):
		return reasonDial, deadline
	case deadline, errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout, true
	}
	if errors.Is(err, errInvalidStatus) {
		return reasonInvalidStatus, false
	}
	if isHeadersTooLarge(err) {
		return reasonHeadersTooLarge, false
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return reasonTimeout, true
	}
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &recErr), errors.As(err, &alertErr), errors.As(err, &certErr):
		return reasonTLS, false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return reasonEOF, false
	}
	return reasonOther, false
}

// isHeadersTooLarge recognises http.Transport's error for response headers
// beyond MaxResponseHeaderBytes; net/http has no sentinel for it, and
// TestAttackHugeResponseHeaders pins the text.
func isHeadersTooLarge(err error) bool {
	return strings.Contains(err.Error(), "server response headers exceeded")
}
