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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2/textlogger"
)

// readDetail asserts an error response: status, JSON content type, and
// exactly {"detail": want}.
func readDetail(t *testing.T, resp *http.Response, status int, want string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 || got["detail"] != want {
		t.Errorf("body = %s, want {\"detail\":%q}", body, want)
	}
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := noRedirectClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

func TestProxyForwards(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "hello")
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	req := sandboxRequest(t, front, http.MethodPost, "/files/a%2Fb/c?x=1&y=two", "team-a", "sb-1", be.portNum())
	req.Body = io.NopCloser(strings.NewReader("payload"))
	req.Header.Set("Authorization", "Bearer secret-token")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Custom", "kept")
	resp := do(t, req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "hello" || resp.Header.Get("X-Backend") != "yes" {
		t.Fatalf("response = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if got == nil {
		t.Fatal("backend not reached")
	}
	checks := map[string][2]string{
		"path":              {got.URL.EscapedPath(), "/files/a%2Fb/c"},
		"query":             {got.URL.RawQuery, "x=1&y=two"},
		"body":              {string(gotBody), "payload"},
		"authorization":     {got.Header.Get("Authorization"), ""},
		"x-forwarded-for":   {strings.Join(got.Header.Values("X-Forwarded-For"), ","), "127.0.0.1"},
		"x-forwarded-host":  {got.Header.Get("X-Forwarded-Host"), strings.TrimPrefix(front.URL, "http://")},
		"x-forwarded-proto": {got.Header.Get("X-Forwarded-Proto"), "http"},
		"x-custom":          {got.Header.Get("X-Custom"), "kept"},
		"x-sandbox-id":      {got.Header.Get("X-Sandbox-Id"), "sb-1"},
		"host":              {got.Host, "127.0.0.1:" + be.port},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestProxyHealthz(t *testing.T) {
	r, _ := newTestRouter(t, nil)
	front := frontend(t, r)
	resp := do(t, mustRequest(t, http.MethodGet, front.URL+"/healthz"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/healthz = %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestProxyRefusals(t *testing.T) {
	// The decoy stands for anything a forged hint could point at (the API
	// server, a metadata service): it must never be dialled.
	decoy := newBackend(t, "127.0.0.2", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pwned") })
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	if decoy.port == be.port {
		t.Skip("port collision between the two loopback listeners")
	}
	r, _ := newTestRouter(t, nil,
		sandboxPod("team-a", "sb-1", "127.0.0.1"),
		sandboxPod("team-a", "pool-1", "127.0.0.1", warm),
	)
	front := frontend(t, r)

	t.Run("missing id", func(t *testing.T) {
		readDetail(t, do(t, mustRequest(t, http.MethodGet, front.URL+"/")), 400, "X-Sandbox-ID header is required.")
	})
	t.Run("invalid id", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "Bad.ID", be.portNum())
		readDetail(t, do(t, req), 400, "Invalid sandbox ID format.")
	})
	t.Run("unknown sandbox", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "nope", be.portNum())
		readDetail(t, do(t, req), 404, "Sandbox not found: nope")
	})
	t.Run("right name, wrong namespace", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-b", "sb-1", be.portNum())
		readDetail(t, do(t, req), 404, "Sandbox not found: sb-1")
	})
	t.Run("forged pod ip hint", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", decoy.portNum())
		req.Header.Set("X-Sandbox-Pod-IP", "127.0.0.2")
		readDetail(t, do(t, req), 403, "X-Sandbox-Pod-IP does not match the sandbox's pod.")
	})
	t.Run("forged hint for unknown sandbox", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "nope", decoy.portNum())
		req.Header.Set("X-Sandbox-Pod-IP", "127.0.0.2")
		readDetail(t, do(t, req), 404, "Sandbox not found: nope")
	})
	t.Run("matching hint", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum())
		req.Header.Set("X-Sandbox-Pod-IP", "127.0.0.1")
		resp := do(t, req)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
	t.Run("warm pool pod by name", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "pool-1", be.portNum())
		readDetail(t, do(t, req), 404, "Sandbox not found: pool-1")
	})
	t.Run("warm pool pod by uid", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "pool-1", be.portNum())
		req.Header.Set("X-Sandbox-UID", string(sandboxUID("team-a", "pool-1")))
		resp := do(t, req)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
	t.Run("uid of another sandbox", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum())
		req.Header.Set("X-Sandbox-UID", string(sandboxUID("team-a", "pool-1")))
		readDetail(t, do(t, req), 404, "Sandbox not found: sb-1")
	})
	t.Run("unknown uid", func(t *testing.T) {
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum())
		req.Header.Set("X-Sandbox-UID", "no-such-uid")
		readDetail(t, do(t, req), 404, "Sandbox not found: sb-1")
	})
	t.Run("nothing listening", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", port)
		readDetail(t, do(t, req), 502, "Could not connect to the backend sandbox: sb-1")
	})
	if n := decoy.hits.Load(); n != 0 {
		t.Errorf("decoy was dialled %d times", n)
	}
}

func TestProxyDNSFallback(t *testing.T) {
	r, _ := newTestRouter(t, func(o *Options) {
		o.DNSFallback = true
		o.ClusterDomain = "invalid" // never resolves: this only checks the path taken
		o.UpstreamMaxRetries = 0
	})
	front := frontend(t, r)
	req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "svc-sb", 0)
	readDetail(t, do(t, req), 502, "Could not connect to the backend sandbox: svc-sb")
	req = sandboxRequest(t, front, http.MethodGet, "/", "team-a", "svc-sb", 0)
	req.Header.Set("X-Sandbox-Pod-IP", "127.0.0.2")
	readDetail(t, do(t, req), 403, "X-Sandbox-Pod-IP does not match the sandbox's pod.")
}

func TestProxyDoesNotFollowRedirects(t *testing.T) {
	target := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "followed") })
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/secret", http.StatusFound)
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	resp := do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum()))
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target.URL+"/secret" {
		t.Errorf("response = %d Location %q, want the 302 unchanged", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := target.hits.Load(); n != 0 {
		t.Errorf("redirect target hit %d times", n)
	}
}

func TestProxyScopedToken(t *testing.T) {
	var sawAuth []string
	var mu sync.Mutex
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		mu.Unlock()
	})
	authz, err := NewScopedTokenAuthorizer(testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newTestRouter(t, func(o *Options) { o.Authorizer = authz },
		sandboxPod("team-a", "sb-1", "127.0.0.1"),
		sandboxPod("team-a", "sb-2", "127.0.0.1"),
		sandboxPod("team-b", "sb-1", "127.0.0.1"),
	)
	front := frontend(t, r)
	tok, _ := MintScopedToken(testSecret, "team-a", "sb-1", time.Minute, time.Now())
	expired, _ := MintScopedToken(testSecret, "team-a", "sb-1", time.Second, time.Now().Add(-time.Hour))

	cases := []struct {
		name, ns, id, token string
		extra               map[string]string
		status              int
		detail              string
	}{
		{"no token", "team-a", "sb-1", "", nil, 401, "unauthenticated"},
		{"garbage token", "team-a", "sb-1", "v1.x.y", nil, 401, "unauthenticated"},
		{"expired", "team-a", "sb-1", expired, nil, 401, "unauthenticated"},
		{"other sandbox", "team-a", "sb-2", tok, nil, 403, "forbidden"},
		{"other namespace", "team-b", "sb-1", tok, nil, 403, "forbidden"},
		{"pod ip header", "team-a", "sb-1", tok, map[string]string{"X-Sandbox-Pod-IP": "127.0.0.1"}, 403, "forbidden"},
		{"uid header", "team-a", "sb-1", tok, map[string]string{"X-Sandbox-UID": string(sandboxUID("team-a", "sb-1"))}, 403, "forbidden"},
		{"allowed", "team-a", "sb-1", tok, nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := sandboxRequest(t, front, http.MethodGet, "/", tc.ns, tc.id, be.portNum())
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for k, v := range tc.extra {
				req.Header.Set(k, v)
			}
			resp := do(t, req)
			if tc.status == 200 {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status = %d", resp.StatusCode)
				}
				return
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			readDetail(t, resp, tc.status, tc.detail)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sawAuth) != 1 || sawAuth[0] != "" {
		t.Errorf("backend saw Authorization %q, want exactly one request without it", sawAuth)
	}
	if got := metricValue(t, r, "sandbox_router_authz_decisions_total", "sandbox_namespace", "team-a", "decision", "deny"); got != 6 {
		t.Errorf("deny decisions in team-a = %v, want 6", got)
	}
	if got := metricValue(t, r, "sandbox_router_authz_decisions_total", "sandbox_namespace", "team-a", "decision", "allow"); got != 1 {
		t.Errorf("allow decisions in team-a = %v, want 1", got)
	}
}

func TestProxySubjectAccessReview(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusTeapot)
		}
	})
	api := &fakeAuthAPI{
		users:  map[string]string{"alice-token": "alice"},
		grants: map[string][]string{"alice": {"team-a"}},
	}
	r, client := newTestRouter(t, nil,
		sandboxPod("team-a", "sb-1", "127.0.0.1"),
		sandboxPod("team-b", "sb-1", "127.0.0.1"),
	)
	api.install(client)
	// The authorizer shares the router's client, as in the binary.
	authz, err := NewSubjectAccessReviewAuthorizer(TokenReviewOptions{Client: client, AllowOpaqueTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	r.opts.Authorizer = authz
	front := frontend(t, r)
	for _, tc := range []struct {
		name, ns, token string
		status          int
	}{
		{"no token", "team-a", "", 401},
		{"unknown token", "team-a", "mallory", 401},
		{"other namespace", "team-b", "alice-token", 403},
		{"granted", "team-a", "alice-token", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sandboxRequest(t, front, http.MethodGet, "/", tc.ns, "sb-1", be.portNum())
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp := do(t, req)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestProxyStreamsResponse(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	resp := do(t, sandboxRequest(t, front, http.MethodGet, "/events", "team-a", "sb-1", be.portNum()))
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "first\n" {
			t.Fatalf("first line = %q", line)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("first chunk not received before the second was written: response buffered")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Errorf("rest = %q", rest)
	}
}

// TestProxyStreamsKnownLengthResponse: a body with a Content-Length that
// the sandbox writes in parts reaches the client part by part (the
// router flushes every write that leaves it incomplete).
func TestProxyStreamsKnownLengthResponse(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "13")
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	req := sandboxRequest(t, front, http.MethodGet, "/download", "team-a", "sb-1", be.portNum())
	type first struct {
		resp *http.Response
		br   *bufio.Reader
		line string
		err  error
	}
	got := make(chan first, 1)
	go func() {
		// Headers and the first part both arrive only if nothing buffers
		// them until the body is complete.
		resp, err := noRedirectClient().Do(req)
		if err != nil {
			got <- first{err: err}
			return
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		got <- first{resp, br, line, err}
	}()
	var f first
	select {
	case f = <-got:
	case <-time.After(5 * time.Second):
		close(release)
		f = <-got
		if f.resp != nil {
			f.resp.Body.Close()
		}
		t.Fatal("first part not received before the second was written: response buffered")
	}
	close(release)
	if f.err != nil {
		t.Fatal(f.err)
	}
	defer f.resp.Body.Close()
	if f.resp.ContentLength != 13 || f.line != "first\n" {
		t.Fatalf("Content-Length %d, first line %q", f.resp.ContentLength, f.line)
	}
	rest, _ := io.ReadAll(f.br)
	if string(rest) != "second\n" {
		t.Errorf("rest = %q", rest)
	}
}

func TestProxyStreamsRequestBody(t *testing.T) {
	gotFirst := make(chan string, 1)
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		line, _ := br.ReadString('\n')
		gotFirst <- line
		rest, _ := io.ReadAll(br)
		_, _ = fmt.Fprintf(w, "%s|%s", strings.TrimSpace(line), rest)
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	pr, pw := io.Pipe()
	req := sandboxRequest(t, front, http.MethodPost, "/upload", "team-a", "sb-1", be.portNum())
	req.Body = pr
	req.ContentLength = -1
	respCh := make(chan *http.Response, 1)
	errCh := make(chan error, 1)
	go func() {
		resp, err := noRedirectClient().Do(req)
		if err != nil {
			errCh <- err
			return
		}
		respCh <- resp
	}()
	_, _ = io.WriteString(pw, "chunk-1\n")
	select {
	case line := <-gotFirst:
		if line != "chunk-1\n" {
			t.Fatalf("backend first line = %q", line)
		}
	case err := <-errCh:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		pw.Close()
		t.Fatal("backend did not see the first chunk before the body ended: request buffered")
	}
	_, _ = io.WriteString(pw, "chunk-2")
	pw.Close()
	select {
	case resp := <-respCh:
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "chunk-1|chunk-2" {
			t.Errorf("echo = %q", body)
		}
	case err := <-errCh:
		t.Fatal(err)
	}
}

func TestProxyWebSocketUpgrade(t *testing.T) {
	sawOrigin := make(chan string, 1)
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		sawOrigin <- r.Header.Get("Origin") + "|" + r.Header.Get("Upgrade")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	})
	// A proxy timeout far shorter than the conversation: upgraded
	// connections must not be subject to it.
	r, _ := newTestRouter(t, func(o *Options) { o.ProxyTimeout = 200 * time.Millisecond },
		sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: router\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Origin: https://evil.example\r\nX-Sandbox-ID: sb-1\r\nX-Sandbox-Namespace: team-a\r\nX-Sandbox-Port: %s\r\n\r\n", be.port); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if got := <-sawOrigin; got != "|websocket" {
		t.Errorf("backend saw Origin|Upgrade = %q, want Origin stripped", got)
	}
	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo = %q, %v", buf, err)
		}
	}
	echo("ping-1")
	time.Sleep(400 * time.Millisecond) // past the proxy timeout
	echo("ping-2")
	conn.Close()
	waitFor(t, func() bool {
		return metricValue(t, r, "sandbox_router_requests_total", "method", "GET", "code", "101", "sandbox_namespace", "team-a") == 1
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProxyTimeouts(t *testing.T) {
	slow := func(d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(d):
				_, _ = io.WriteString(w, "done")
			case <-r.Context().Done():
			}
		}
	}
	cases := map[string]struct {
		opts        func(*Options)
		backend     time.Duration
		header      string
		wantStatus  int
		maxDuration time.Duration
	}{
		"X-Sandbox-Timeout cuts a slow backend": {
			backend: 5 * time.Second, header: "0.3", wantStatus: 504, maxDuration: 2 * time.Second,
		},
		"X-Sandbox-Timeout capped by proxy timeout": {
			opts:    func(o *Options) { o.ProxyTimeout = 300 * time.Millisecond },
			backend: 5 * time.Second, header: "60", wantStatus: 504, maxDuration: 2 * time.Second,
		},
		"response header timeout without X-Sandbox-Timeout": {
			opts:    func(o *Options) { o.ResponseHeaderTimeout = 200 * time.Millisecond },
			backend: 5 * time.Second, wantStatus: 504, maxDuration: 2 * time.Second,
		},
		"X-Sandbox-Timeout raises the response header timeout": {
			opts:    func(o *Options) { o.ResponseHeaderTimeout = 100 * time.Millisecond },
			backend: 500 * time.Millisecond, header: "5", wantStatus: 200, maxDuration: 3 * time.Second,
		},
		"invalid X-Sandbox-Timeout ignored": {
			opts:    func(o *Options) { o.ResponseHeaderTimeout = 200 * time.Millisecond },
			backend: 5 * time.Second, header: "-1", wantStatus: 504, maxDuration: 2 * time.Second,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			be := newBackend(t, "127.0.0.1", slow(tc.backend))
			r, _ := newTestRouter(t, tc.opts, sandboxPod("team-a", "sb-1", "127.0.0.1"))
			front := frontend(t, r)
			req := sandboxRequest(t, front, http.MethodPost, "/execute", "team-a", "sb-1", be.portNum())
			if tc.header != "" {
				req.Header.Set("X-Sandbox-Timeout", tc.header)
			}
			start := time.Now()
			resp := do(t, req)
			if d := time.Since(start); d > tc.maxDuration {
				t.Errorf("took %v, want < %v", d, tc.maxDuration)
			}
			if tc.wantStatus == 504 {
				readDetail(t, resp, 504, "Timed out waiting for the backend sandbox: sb-1")
				if got := metricValue(t, r, "sandbox_router_upstream_errors_total", "sandbox_namespace", "team-a", "reason", "timeout"); got != 1 {
					t.Errorf("timeout errors = %v", got)
				}
				return
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

func TestProxyRetriesDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()

	// The listener comes up after the first attempts were refused, like a
	// sandbox whose server is still starting.
	srvDone := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up") })}
	go func() {
		defer close(srvDone)
		time.Sleep(150 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-srvDone
	})

	r, _ := newTestRouter(t, func(o *Options) {
		o.UpstreamMaxRetries = 5
		o.UpstreamRetryInitialDelay = 50 * time.Millisecond
		o.UpstreamRetryMaxDelay = 200 * time.Millisecond
	}, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	req := sandboxRequest(t, front, http.MethodPost, "/", "team-a", "sb-1", 0)
	req.Header.Set("X-Sandbox-Port", port)
	req.Body = io.NopCloser(strings.NewReader("body survives retries"))
	resp := do(t, req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "up" {
		t.Fatalf("response = %d %q (listener up: %v)", resp.StatusCode, body, err)
	}
	if got := metricValue(t, r, "sandbox_router_upstream_retries_total", "sandbox_namespace", "team-a"); got < 1 {
		t.Errorf("retries = %v, want >= 1", got)
	}
	// Connection refused means a live host: the entry stays.
	if _, ok := r.Cache().ByName("team-a", "sb-1"); !ok {
		t.Error("connection refused evicted the cache entry")
	}
}

func TestProxyRetriesStopAtDeadline(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r, _ := newTestRouter(t, func(o *Options) {
		o.UpstreamMaxRetries = 3
		o.UpstreamRetryInitialDelay = 2 * time.Second
		o.UpstreamRetryMaxDelay = 2 * time.Second
	}, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", port)
	req.Header.Set("X-Sandbox-Timeout", "0.2")
	start := time.Now()
	readDetail(t, do(t, req), 504, "Timed out waiting for the backend sandbox: sb-1")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("retry sleep outlived the request deadline: %v", d)
	}
}

func TestProxyMaxBody(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	r, _ := newTestRouter(t, func(o *Options) { o.MaxRequestBodyBytes = 10 }, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	req := sandboxRequest(t, front, http.MethodPost, "/", "team-a", "sb-1", be.portNum())
	req.Body = io.NopCloser(strings.NewReader("0123456789abc"))
	req.ContentLength = 13
	readDetail(t, do(t, req), 413, "Request body too large.")
	if be.hits.Load() != 0 {
		t.Error("oversized declared body reached the backend")
	}

	req = sandboxRequest(t, front, http.MethodPost, "/", "team-a", "sb-1", be.portNum())
	req.Body = io.NopCloser(strings.NewReader("0123456789abc")) // chunked: no length known up front
	req.ContentLength = -1
	resp := do(t, req)
	resp.Body.Close()
	if resp.StatusCode != 413 && resp.StatusCode != 400 {
		t.Errorf("chunked oversized body: status %d, want 413 (or the backend's 400)", resp.StatusCode)
	}

	req = sandboxRequest(t, front, http.MethodPost, "/", "team-a", "sb-1", be.portNum())
	req.Body = io.NopCloser(strings.NewReader("small"))
	resp = do(t, req)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("small body: status %d", resp.StatusCode)
	}
}

func TestProxyMetricsAndAccessLog(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	var buf bytes.Buffer
	var bufMu sync.Mutex
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(lockedWriter{&buf, &bufMu})))
	r, _ := newTestRouter(t, func(o *Options) { o.Logger = logger }, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	req := sandboxRequest(t, front, http.MethodGet, "/path?token=query-secret", "team-a", "sb-1", be.portNum())
	req.Header.Set("Authorization", "Bearer header-secret")
	req.Header.Set("User-Agent", "test-agent")
	resp := do(t, req)
	resp.Body.Close()
	resp = do(t, sandboxRequest(t, front, http.MethodGet, "/", "attacker-chosen-ns", "nope", be.portNum()))
	resp.Body.Close()
	resp = do(t, mustRequest(t, http.MethodGet, front.URL+"/healthz"))
	resp.Body.Close()
	// The handler records a request after its response reached the
	// client; wait for both records (metrics, then the access log line).
	waitFor(t, func() bool {
		bufMu.Lock()
		lines := strings.Count(buf.String(), `"sandbox-router.access"`)
		bufMu.Unlock()
		return lines >= 2
	})

	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sandbox_namespace" && l.GetValue() == "attacker-chosen-ns" {
					t.Errorf("%s carries an unknown namespace as a label", f.GetName())
				}
			}
		}
	}
	for _, name := range []string{
		"sandbox_router_requests_total", "sandbox_router_request_duration_seconds", "sandbox_router_inflight_requests",
		"sandbox_router_authz_decisions_total", "sandbox_router_build_info", "go_goroutines",
	} {
		if !have[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := metricValue(t, r, "sandbox_router_requests_total", "method", "GET", "code", "200", "sandbox_namespace", "team-a"); got != 1 {
		t.Errorf("requests{GET,200,team-a} = %v", got)
	}
	if got := metricValue(t, r, "sandbox_router_requests_total", "method", "GET", "code", "404", "sandbox_namespace", "-"); got != 1 {
		t.Errorf("requests{GET,404,-} = %v", got)
	}

	bufMu.Lock()
	out := buf.String()
	bufMu.Unlock()
	for _, secret := range []string{"query-secret", "header-secret", "token="} {
		if strings.Contains(out, secret) {
			t.Errorf("access log contains %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"sandbox-router.access"`, `"request"`, `method="GET"`, `path="/path"`, `status=200`, `sandbox_id="sb-1"`,
		`sandbox_namespace="team-a"`, `user_agent="test-agent"`, `client_ip="127.0.0.1"`, `bytes_out=2`, `duration_ms=`} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `path="/healthz"`) {
		t.Errorf("access log has /healthz:\n%s", out)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// metricValue reads a counter or gauge from the router's registry by name
// and label pairs; 0 when absent.
func metricValue(t *testing.T, r *Router, name string, labelPairs ...string) float64 {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labelPairs); i += 2 {
				if have[labelPairs[i]] != labelPairs[i+1] {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// A dead-host dial failure (not connection refused) on a cached IP never
// evicts the entry: the client chose the port, and a port a NetworkPolicy
// drops times out just like a dead Pod. The entry is re-derived from the
// informers' stores, which have not changed, so nothing is counted.
func TestProxyDeadHostNeverEvicts(t *testing.T) {
	r, _ := newTestRouter(t, func(o *Options) { o.UpstreamMaxRetries = 1 }, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	rt := r.proxy.Transport.(*retryTransport)
	var calls int
	rt.base = roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: no route to host")}
	})
	front := frontend(t, r)
	readDetail(t, do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", 1234)), 502, "Could not connect to the backend sandbox: sb-1")
	if calls != 2 {
		t.Errorf("attempts = %d, want 2", calls)
	}
	if _, ok := r.Cache().ByName("team-a", "sb-1"); !ok {
		t.Error("a failed dial evicted the entry")
	}
	if got := metricValue(t, r, "sandbox_router_cache_invalidations_total", "sandbox_namespace", "team-a"); got != 0 {
		t.Errorf("invalidations = %v, want 0 (the stores did not change)", got)
	}
	// The next request is resolved as before (and fails the same way,
	// not with a 404).
	readDetail(t, do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", 8888)), 502, "Could not connect to the backend sandbox: sb-1")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
