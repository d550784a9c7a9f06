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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
)

// newLoopbackServer is an httptest server bound to 127.0.0.1 only.
func newLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// testSandbox returns an open handle whose identity is set as if Create had
// finished. Retries do not pause.
func testSandbox(t *testing.T, opts ...ClientOption) *Sandbox {
	t.Helper()
	c, err := NewClientForClientset(fake.NewSimpleClientset(), opts...)
	if err != nil {
		t.Fatalf("NewClientForClientset: %v", err)
	}
	c.retryBackoff = func(int) time.Duration { return 0 }
	sb := newSandbox(c, "team-a", "sandbox-claim-abcde")
	sb.sandboxName = "warm-xyz12"
	sb.podName = "warm-xyz12"
	sb.podIP = "127.30.1.3"
	return sb
}

// directSandbox targets srv in direct pod IP mode: the "pod IP" is the
// server's loopback address.
func directSandbox(t *testing.T, srv *httptest.Server) *Sandbox {
	t.Helper()
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	sb := testSandbox(t, WithDirectPodIP(), WithServerPort(p))
	sb.podIP = host
	return sb
}

// recorder is a handler that remembers requests and answers from a script.
type recorder struct {
	mu    sync.Mutex
	reqs  []*http.Request
	hits  atomic.Int32
	reply func(w http.ResponseWriter, r *http.Request, n int)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(rec.hits.Add(1))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
	rec.mu.Unlock()
	rec.reply(w, r, n)
}

func (rec *recorder) last() *http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[len(rec.reqs)-1]
}

func jsonReply(body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestRouterHeaders(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"stdout":"hi\n","stderr":"","exit_code":0}`)}
	srv := newLoopbackServer(t, rec)
	sb := testSandbox(t, WithRouterURL(srv.URL+"/prefix/"), WithBearerToken("s3cret"), WithServerPort(9999))

	res, err := sb.Run(t.Context(), "echo hi", WithTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Stdout != "hi\n" || res.ExitCode != 0 {
		t.Errorf("result %+v", res)
	}
	r := rec.last()
	if r.Method != http.MethodPost || r.URL.Path != "/prefix/execute" {
		t.Errorf("request %s %s, want POST /prefix/execute", r.Method, r.URL.Path)
	}
	want := map[string]string{
		"X-Sandbox-Id":        "warm-xyz12",
		"X-Sandbox-Namespace": "team-a",
		"X-Sandbox-Port":      "9999",
		"X-Sandbox-Pod-Ip":    "127.30.1.3",
		"Authorization":       "Bearer s3cret",
		"Content-Type":        "application/json",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if id := r.Header.Get("X-Request-Id"); !hex16.MatchString(id) {
		t.Errorf("X-Request-ID %q, want 16 hex chars", id)
	}
	to := r.Header.Get("X-Sandbox-Timeout")
	secs, err := strconv.ParseFloat(to, 64)
	if err != nil || secs <= 4 || secs > 5 {
		t.Errorf("X-Sandbox-Timeout %q: want the ~5 s left on the call", to)
	}
	if strconv.FormatFloat(secs, 'f', -1, 64) != to {
		t.Errorf("X-Sandbox-Timeout %q is not the shortest decimal", to)
	}
}

func TestSandboxTimeoutHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	if got := sandboxTimeout(ctx, 60*time.Second); got != "60" {
		t.Errorf("attempt timeout shorter than deadline: got %q, want 60", got)
	}
	if got := sandboxTimeout(t.Context(), 1500*time.Millisecond); got != "1.5" {
		t.Errorf("no deadline: got %q, want 1.5", got)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel2()
	got, _ := strconv.ParseFloat(sandboxTimeout(short, time.Minute), 64)
	if got <= 1 || got > 2 {
		t.Errorf("deadline shorter than attempt timeout: got %v, want <= 2", got)
	}
	expired, cancel3 := context.WithTimeout(t.Context(), -time.Second)
	defer cancel3()
	if got := sandboxTimeout(expired, time.Minute); got != "" {
		t.Errorf("expired: got %q, want no header", got)
	}
}

func TestWithoutPodIPHint(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"exists":true}`)}
	srv := newLoopbackServer(t, rec)
	sb := testSandbox(t, WithRouterURL(srv.URL), WithoutPodIPHint())
	if _, err := sb.Exists(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if v, ok := rec.last().Header["X-Sandbox-Pod-Ip"]; ok {
		t.Errorf("X-Sandbox-Pod-IP sent: %v", v)
	}
	if rec.last().Header.Get("X-Sandbox-Id") == "" {
		t.Error("router headers missing")
	}
}

func TestDirectModeSendsNoRouterHeaders(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"stdout":"","stderr":"","exit_code":3}`)}
	srv := newLoopbackServer(t, rec)
	sb := directSandbox(t, srv)

	res, err := sb.Run(t.Context(), "false")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d", res.ExitCode)
	}
	r := rec.last()
	if r.URL.Path != "/execute" || r.Host != srv.Listener.Addr().String() {
		t.Errorf("request to %s%s, want %s/execute", r.Host, r.URL.Path, srv.Listener.Addr())
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Sandbox-") || k == "Authorization" {
			t.Errorf("direct mode sent %s: %v", k, r.Header[k])
		}
	}
	if !hex16.MatchString(r.Header.Get("X-Request-Id")) {
		t.Error("X-Request-ID missing in direct mode")
	}
}

func TestDirectModeWithoutPodIP(t *testing.T) {
	sb := testSandbox(t, WithDirectPodIP())
	sb.podIP = ""
	if _, err := sb.Exists(t.Context(), "a"); !errors.Is(err, ErrNotReady) {
		t.Errorf("error %v: want ErrNotReady", err)
	}
}

func TestTokenSourceCalledPerRequest(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"exists":false}`)}
	srv := newLoopbackServer(t, rec)
	var n atomic.Int32
	sb := testSandbox(t, WithRouterURL(srv.URL), WithTokenSource(func(context.Context) (string, error) {
		return fmt.Sprintf("tok-%d", n.Add(1)), nil
	}))
	for i := 1; i <= 3; i++ {
		if _, err := sb.Exists(t.Context(), "f"); err != nil {
			t.Fatal(err)
		}
		if got, want := rec.last().Header.Get("Authorization"), fmt.Sprintf("Bearer tok-%d", i); got != want {
			t.Errorf("request %d: Authorization %q, want %q", i, got, want)
		}
	}
}

func TestTokenSourceError(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"exists":false}`)}
	srv := newLoopbackServer(t, rec)
	boom := errors.New("token expired")
	sb := testSandbox(t, WithRouterURL(srv.URL), WithTokenSource(func(context.Context) (string, error) { return "", boom }))
	if _, err := sb.Exists(t.Context(), "f"); !errors.Is(err, boom) {
		t.Errorf("error %v: want the token error", err)
	}
	if rec.hits.Load() != 0 {
		t.Errorf("request sent without a token (%d hits), or retried", rec.hits.Load())
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	target := &recorder{reply: jsonReply(`{"exists":true}`)}
	targetSrv := newLoopbackServer(t, target)
	redirector := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, targetSrv.URL+r.URL.Path, http.StatusFound)
	}}
	srv := newLoopbackServer(t, redirector)

	for name, opt := range map[string]ClientOption{
		"default client": nil,
		// http.Client{} follows redirects by default; the SDK must
		// override that.
		"custom client": WithHTTPClient(&http.Client{}),
	} {
		t.Run(name, func(t *testing.T) {
			sb := testSandbox(t, WithRouterURL(srv.URL), opt)
			_, err := sb.Exists(t.Context(), "f")
			herr, ok := errAs[*HTTPError](err)
			if !ok || herr.StatusCode != http.StatusFound || herr.Operation != "exists" {
				t.Errorf("error %v: want *HTTPError 302 from exists", err)
			}
		})
	}
	if n := target.hits.Load(); n != 0 {
		t.Errorf("redirect target got %d hits, want 0", n)
	}
}

func statusThenOK(failures, status int, ok string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= failures {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"detail":"Could not connect to the backend sandbox: x"}`)
			return
		}
		_, _ = io.WriteString(w, ok)
	}
}

func TestIdempotentOperationsRetry(t *testing.T) {
	ops := map[string]struct {
		ok   string
		call func(*Sandbox) error
	}{
		"read":   {"data", func(sb *Sandbox) error { _, err := sb.Read(context.Background(), "f"); return err }},
		"list":   {`[]`, func(sb *Sandbox) error { _, err := sb.List(context.Background(), "d"); return err }},
		"exists": {`{"exists":true}`, func(sb *Sandbox) error { _, err := sb.Exists(context.Background(), "f"); return err }},
	}
	for name, op := range ops {
		for _, status := range []int{500, 502, 503, 504} {
			t.Run(fmt.Sprintf("%s/%d", name, status), func(t *testing.T) {
				rec := &recorder{reply: statusThenOK(2, status, op.ok)}
				sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
				if err := op.call(sb); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if n := rec.hits.Load(); n != 3 {
					t.Errorf("hits %d, want 3", n)
				}
				ids := map[string]bool{}
				for _, r := range rec.reqs {
					ids[r.Header.Get("X-Request-Id")] = true
				}
				if len(ids) != 1 {
					t.Errorf("attempts of one call used %d request IDs, want 1", len(ids))
				}
			})
		}
	}
}

func TestNonRetryableStatus(t *testing.T) {
	rec := &recorder{reply: statusThenOK(5, http.StatusNotFound, "x")}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	_, err := sb.Read(t.Context(), "missing")
	herr, ok := errAs[*HTTPError](err)
	if !ok || herr.StatusCode != 404 || !strings.Contains(herr.Body, "Could not connect") {
		t.Errorf("error %v: want *HTTPError 404 with the body", err)
	}
	if rec.hits.Load() != 1 {
		t.Errorf("404 retried: %d hits", rec.hits.Load())
	}
	if !strings.HasPrefix(err.Error(), "sandbox[team-a/sandbox-claim-abcde]: ") {
		t.Errorf("error %q lacks the sandbox prefix", err)
	}
}

func TestRetriesExhausted(t *testing.T) {
	rec := &recorder{reply: statusThenOK(100, http.StatusServiceUnavailable, "")}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	_, err := sb.List(t.Context(), "d", WithMaxAttempts(3))
	if !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("error %v: want ErrRetriesExhausted", err)
	}
	if herr, ok := errAs[*HTTPError](err); !ok || herr.StatusCode != 503 {
		t.Errorf("error %v: want the last *HTTPError 503 wrapped", err)
	}
	if rec.hits.Load() != 3 {
		t.Errorf("hits %d, want 3", rec.hits.Load())
	}
	// The default budget.
	rec.hits.Store(0)
	_, _ = sb.Exists(t.Context(), "f")
	if rec.hits.Load() != DefaultMaxAttempts {
		t.Errorf("default attempts %d, want %d", rec.hits.Load(), DefaultMaxAttempts)
	}
}

func TestCommandsAndUploadsAreNotRetried(t *testing.T) {
	for name, call := range map[string]func(*Sandbox) error{
		"run": func(sb *Sandbox) error { _, err := sb.Run(context.Background(), "touch x"); return err },
		// WithMaxAttempts cannot make a command run twice.
		"run with max attempts": func(sb *Sandbox) error {
			_, err := sb.Run(context.Background(), "touch x", WithMaxAttempts(5))
			return err
		},
		"stream": func(sb *Sandbox) error {
			_, err := sb.Stream(context.Background(), "touch x", WithMaxAttempts(5))
			return err
		},
		"write": func(sb *Sandbox) error { return sb.Write(context.Background(), "f", []byte("x")) },
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{reply: statusThenOK(1, http.StatusBadGateway, `{"stdout":"","stderr":"","exit_code":0}`)}
			sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
			err := call(sb)
			if herr, ok := errAs[*HTTPError](err); !ok || herr.StatusCode != 502 {
				t.Errorf("error %v: want *HTTPError 502", err)
			}
			if errors.Is(err, ErrRetriesExhausted) {
				t.Errorf("single attempt reported as retries exhausted: %v", err)
			}
			if n := rec.hits.Load(); n != 1 {
				t.Errorf("hits %d, want 1", n)
			}
		})
	}
}

func TestWriteRetriesWhenAsked(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, n int) {
		_, filename, content, err := readUpload(r)
		if err != nil {
			t.Errorf("attempt %d: %v", n, err)
			return
		}
		mu.Lock()
		bodies = append(bodies, filename+"="+content)
		mu.Unlock()
		statusThenOK(1, http.StatusServiceUnavailable, `{"message":"ok"}`)(w, r, n)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	if err := sb.Write(t.Context(), "out/data.bin", []byte("payload"), WithMaxAttempts(2)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	want := []string{"out/data.bin=payload", "out/data.bin=payload"}
	if strings.Join(bodies, ",") != strings.Join(want, ",") {
		t.Errorf("attempt bodies %q, want %q (the body must be resent whole)", bodies, want)
	}
}

func TestTransportErrorsAreRetried(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			// Drop the connection without a response.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, `{"exists":true}`)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	ok, err := sb.Exists(t.Context(), "f")
	if err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if rec.hits.Load() != 2 {
		t.Errorf("hits %d, want 2", rec.hits.Load())
	}
}

func TestPerAttemptTimeoutIsRetried(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "abc")
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	b, err := sb.Read(t.Context(), "f", WithAttemptTimeout(100*time.Millisecond))
	if err != nil || string(b) != "abc" {
		t.Fatalf("Read = %q, %v", b, err)
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	rec := &recorder{reply: statusThenOK(100, http.StatusServiceUnavailable, "")}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	sb.client.retryBackoff = func(int) time.Duration { return time.Hour }
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := sb.Read(ctx, "f")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want context.Canceled", err)
	}
	if herr, ok := errAs[*HTTPError](err); !ok || herr.StatusCode != 503 {
		t.Errorf("error %v: want the last failure too", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v to stop retries", d)
	}
	if rec.hits.Load() != 1 {
		t.Errorf("hits %d, want 1", rec.hits.Load())
	}

	// A deadline is ErrTimeout.
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := sb.Read(ctx, "f"); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want ErrTimeout and DeadlineExceeded", err)
	}
}

func TestRetryBackoffSchedule(t *testing.T) {
	if d := retryBackoff(1); d != 0 {
		t.Errorf("pause before the second attempt: %v, want 0", d)
	}
	for i, base := range map[int]time.Duration{2: 500 * time.Millisecond, 3: time.Second, 4: 2 * time.Second, 6: 8 * time.Second, 20: 8 * time.Second} {
		for range 50 {
			d := retryBackoff(i)
			if d < base*3/4 || d > base*5/4 {
				t.Fatalf("retryBackoff(%d) = %v, want %v ±25%%", i, d, base)
			}
		}
	}
}

func TestPathEscape(t *testing.T) {
	for in, want := range map[string]string{
		"file.txt":        "file.txt",
		"a/b/c.txt":       "a%2Fb%2Fc.txt",
		"/abs/path":       "%2Fabs%2Fpath",
		".":               "%2E",
		"..":              "%2E%2E",
		"../etc/passwd":   "..%2Fetc%2Fpasswd",
		"a/./b":           "a%2F.%2Fb",
		"...":             "...",
		"with space":      "with%20space",
		"100%":            "100%25",
		"q?x#y&z=1+2":     "q%3Fx%23y%26z%3D1%2B2",
		"héllo":           "h%C3%A9llo",
		"日本":              "%E6%97%A5%E6%9C%AC",
		"tilde~_-.ok":     "tilde~_-.ok",
		"back\\slash":     "back%5Cslash",
		"ctl\x00\n":       "ctl%00%0A",
		"Mixed/Case.TXT~": "Mixed%2FCase.TXT~",
	} {
		if got := pathEscape(in); got != want {
			t.Errorf("pathEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPathReachesTheWire checks that the escaped path is not normalised on
// the way: no dot-segment removal, no decoding of %2F.
func TestPathReachesTheWire(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{"exists":true}`)}
	srv := newLoopbackServer(t, rec)
	sb := testSandbox(t, WithRouterURL(srv.URL))
	for in, want := range map[string]string{
		"..":          "/exists/%2E%2E",
		".":           "/exists/%2E",
		"a b/../c":    "/exists/a%20b%2F..%2Fc",
		"dir/日.txt":   "/exists/dir%2F%E6%97%A5.txt",
		"/etc/passwd": "/exists/%2Fetc%2Fpasswd",
	} {
		if _, err := sb.Exists(t.Context(), in); err != nil {
			t.Fatalf("Exists(%q): %v", in, err)
		}
		if got := rec.last().RequestURI; got != want {
			t.Errorf("Exists(%q) sent %q, want %q", in, got, want)
		}
		if u, _ := url.PathUnescape(strings.TrimPrefix(rec.last().RequestURI, "/exists/")); u != in {
			t.Errorf("round trip of %q gave %q", in, u)
		}
	}
}

func TestEmptyPathRejected(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{}`)}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	_, e1 := sb.Read(t.Context(), "")
	_, e2 := sb.List(t.Context(), "")
	_, e3 := sb.Exists(t.Context(), "")
	e4 := sb.Write(t.Context(), "", nil)
	_, e5 := sb.Run(t.Context(), "")
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("call %d: %v, want ErrInvalidArgument", i, err)
		}
	}
	if rec.hits.Load() != 0 {
		t.Errorf("%d requests sent", rec.hits.Load())
	}
}

// errAs is errors.As for a target type.
func errAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}

// TestRouterCacheLagIsResent: right after Create, the router's Pod cache
// may not resolve the sandbox by name yet (a claimed warm Pod is name
// routable only once it lost its pool label). Its 404 means nothing was
// dialled, so even Run, never retried otherwise, is resent until the router
// catches up; once the handle is older than the settle window, or for any
// other 404, the answer is final.
func TestRouterCacheLagIsResent(t *testing.T) {
	notFound := func(id string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"detail":"Sandbox not found: `+id+`"}`)
		}
	}
	lagging := func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			notFound("warm-xyz12")(w, r, n)
			return
		}
		jsonReply(`{"stdout":"hi\n","stderr":"","exit_code":0}`)(w, r, n)
	}

	rec := &recorder{reply: lagging}
	srv := newLoopbackServer(t, rec)
	sb := testSandbox(t, WithRouterURL(srv.URL))
	sb.readyAt = time.Now()
	res, err := sb.Run(t.Context(), "echo hi", WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("Run while the router catches up: %v", err)
	}
	if res.Stdout != "hi\n" || rec.hits.Load() != 3 {
		t.Errorf("Run = %+v after %d requests, want hi after 3", res, rec.hits.Load())
	}

	for name, tc := range map[string]struct {
		reply   func(http.ResponseWriter, *http.Request, int)
		readyAt time.Time
		opts    []ClientOption
	}{
		"handle older than the window": {reply: notFound("warm-xyz12"), readyAt: time.Now().Add(-routeSettleWindow - time.Second)},
		"another sandbox's miss":       {reply: notFound("warm-other"), readyAt: time.Now()},
		"runtime's own 404": {reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"detail":"Not Found"}`)
		}, readyAt: time.Now()},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{reply: tc.reply}
			srv := newLoopbackServer(t, rec)
			sb := testSandbox(t, WithRouterURL(srv.URL))
			sb.readyAt = tc.readyAt
			_, err := sb.Run(t.Context(), "echo hi", WithTimeout(10*time.Second))
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
				t.Fatalf("Run = %v, want *HTTPError 404", err)
			}
			if n := rec.hits.Load(); n != 1 {
				t.Errorf("%d requests, want 1: this 404 is final", n)
			}
		})
	}

	// Direct mode has no router: a 404 is the pod's and final.
	rec = &recorder{reply: notFound("warm-xyz12")}
	sb = directSandbox(t, newLoopbackServer(t, rec))
	sb.readyAt = time.Now()
	if _, err := sb.Run(t.Context(), "echo hi", WithTimeout(10*time.Second)); err == nil || rec.hits.Load() != 1 {
		t.Errorf("direct mode: Run = %v after %d requests, want a final 404 after 1", err, rec.hits.Load())
	}
}
