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
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// hostileUpstream is a sandbox that speaks HTTP by hand: it reads each
// request's headers and then lets answer write whatever it likes on the
// raw connection. It listens on 127.0.0.1 until the test ends.
type hostileUpstream struct {
	port int
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

func newHostileUpstream(t *testing.T, answer func(c net.Conn, req *http.Request)) *hostileUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileUpstream{port: l.Addr().(*net.TCPAddr).Port, open: map[net.Conn]struct{}{}}
	h.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.open[c] = struct{}{}
			h.mu.Unlock()
			h.wg.Go(func() {
				defer func() {
					h.mu.Lock()
					delete(h.open, c)
					h.mu.Unlock()
					c.Close()
				}()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				answer(c, req)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		h.mu.Lock()
		for c := range h.open {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

// countingConn counts the bytes the router reads from an upstream.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countUpstreamReads makes every upstream connection of r count what the
// router reads from it.
func countUpstreamReads(r *Router) *atomic.Int64 {
	var n atomic.Int64
	dial := r.transport.DialContext
	r.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: &n}, nil
	}
	return &n
}

// TestAttackHugeResponseHeaders: a sandbox answers with a megabyte of
// headers to many requests at once. net/http would read up to 10 MiB of
// them per response and hold them in memory; the router reads at most
// MaxResponseHeaderBytes per response and answers 502.
func TestAttackHugeResponseHeaders(t *testing.T) {
	const (
		junk     = 1 << 20
		requests = 8
	)
	line := "X-Junk: " + strings.Repeat("a", 1000) + "\r\n"
	up := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
		w := bufio.NewWriterSize(c, 64<<10)
		_, _ = w.WriteString("HTTP/1.1 200 OK\r\n")
		for written := 0; written < junk; written += len(line) {
			if _, err := w.WriteString(line); err != nil {
				return // the router hung up, as it should
			}
		}
		_, _ = w.WriteString("Content-Length: 2\r\n\r\nok")
		_ = w.Flush()
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	read := countUpstreamReads(r)
	front := frontend(t, r)

	resps := make(chan *http.Response, requests)
	errs := make(chan error, requests)
	for range requests {
		go func() {
			resp, err := noRedirectClient().Do(sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", up.port))
			if err != nil {
				errs <- err
				return
			}
			resps <- resp
		}()
	}
	for range requests {
		select {
		case resp := <-resps:
			readDetail(t, resp, 502, "Could not connect to the backend sandbox: sb-1")
		case err := <-errs:
			t.Error(err)
		}
	}
	// What the transport may read per response: the cap, plus one bufio
	// fill (4 KiB) of slack.
	if got, limit := read.Load(), int64(requests*(DefaultMaxResponseHeaderBytes+4<<10)); got > limit {
		t.Errorf("router read %d bytes of response headers for %d responses, want <= %d", got, requests, limit)
	}
	if got := metricValue(t, r, "sandbox_router_upstream_errors_total", "sandbox_namespace", "team-a", "reason", "headers_too_large"); got != requests {
		t.Errorf("upstream_errors{reason=headers_too_large} = %v, want %d", got, requests)
	}

	// Headers well within the cap still pass.
	ok := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok", strings.Repeat("b", 32<<10))
	})
	resp := do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", ok.port))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || len(resp.Header.Get("X-Big")) != 32<<10 {
		t.Errorf("32 KiB of headers: status %d body %q", resp.StatusCode, body)
	}
}

// TestAttackInvalidUpstreamStatus: a sandbox answers with status codes no
// HTTP client takes. Below 100 net/http's WriteHeader panics in the
// handler (every such request kills its connection and logs a stack);
// 600-999 would reach the client and become metric labels. The router
// answers 502 and its code labels stay in a fixed set.
func TestAttackInvalidUpstreamStatus(t *testing.T) {
	up := newHostileUpstream(t, func(c net.Conn, req *http.Request) {
		_, _ = fmt.Fprintf(c, "HTTP/1.1 %s Hostile\r\nContent-Length: 2\r\n\r\nno", req.URL.Query().Get("code"))
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	invalid := []string{"000", "042", "099", "600", "999"}
	for _, code := range invalid {
		t.Run(code, func(t *testing.T) {
			req := sandboxRequest(t, front, http.MethodGet, "/?code="+code, "team-a", "sb-1", up.port)
			readDetail(t, do(t, req), 502, "Could not connect to the backend sandbox: sb-1")
		})
	}
	// Valid but unregistered codes pass through and are labelled by class.
	for _, code := range []string{"299", "499", "599"} {
		resp := do(t, sandboxRequest(t, front, http.MethodGet, "/?code="+code, "team-a", "sb-1", up.port))
		resp.Body.Close()
		if fmt.Sprint(resp.StatusCode) != code {
			t.Errorf("code %s: status %d", code, resp.StatusCode)
		}
	}
	if got := metricValue(t, r, "sandbox_router_upstream_errors_total", "sandbox_namespace", "team-a", "reason", "invalid_status"); got != float64(len(invalid)) {
		t.Errorf("upstream_errors{reason=invalid_status} = %v, want %d", got, len(invalid))
	}
	waitFor(t, func() bool {
		return metricValue(t, r, "sandbox_router_requests_total", "code", "5xx") == 1
	})
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"2xx": true, "4xx": true, "5xx": true}
	for c := 100; c < 600; c++ {
		if http.StatusText(c) != "" {
			allowed[fmt.Sprint(c)] = true
		}
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && !allowed[l.GetValue()] {
					t.Errorf("%s has code label %q outside the fixed set", f.GetName(), l.GetValue())
				}
			}
		}
	}
	if got := metricValue(t, r, "sandbox_router_requests_total", "code", "502"); got != float64(len(invalid)) {
		t.Errorf("requests{code=502} = %v, want %d", got, len(invalid))
	}
}
