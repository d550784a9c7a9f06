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
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
)

// Every wait below is a deadline the test sets itself, far longer than
// the router's bounds under test (hundreds of milliseconds): it only
// expires when the router fails to act.
const attackWait = 10 * time.Second

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so tests can be several clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: d.DialContext},
		Timeout:   attackWait,
	}
}

func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAttackPerClientInflightLimit: one client holds requests open on a
// slow sandbox. Beyond its per-client share it gets 503 with Retry-After
// while other clients are still served; beyond the total, everyone gets
// 503 until requests finish.
func TestAttackPerClientInflightLimit(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	var held atomic.Int64
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "ok")
	})
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	r, _ := newTestRouter(t, func(o *Options) {
		o.MaxInflightRequestsPerClient = 2
		o.MaxInflightRequests = 3
	}, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	holders := make(chan error, 3)
	hold := func(ip string) {
		go func() {
			resp, err := clientFrom(ip).Do(sandboxRequest(t, front, http.MethodGet, "/hold", "team-a", "sb-1", be.portNum()))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("held request: status %d", resp.StatusCode)
				}
			}
			holders <- err
		}()
	}
	overloaded := func(ip string) {
		t.Helper()
		resp, err := clientFrom(ip).Do(sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum()))
		if err != nil {
			t.Fatalf("request from %s: %v", ip, err)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After = %q, want 1", ra)
		}
		readDetail(t, resp, http.StatusServiceUnavailable, "Too many requests in flight; retry later.")
	}

	hold("127.0.0.1")
	hold("127.0.0.1")
	waitFor(t, func() bool { return held.Load() == 2 })
	overloaded("127.0.0.1")
	// Another client still gets through.
	resp, err := clientFrom("127.0.0.2").Do(sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("second client: status %d", resp.StatusCode)
	}
	// The total: three held, a third client is refused too. (The second
	// client's request has its answer; wait until it has left as well.)
	waitFor(t, func() bool { return r.inflight.Load() == 2 })
	hold("127.0.0.2")
	waitFor(t, func() bool { return held.Load() == 3 })
	overloaded("127.0.0.3")

	releaseOnce.Do(func() { close(release) })
	for range 3 {
		if err := <-holders; err != nil {
			t.Error(err)
		}
	}
	for limit, want := range map[string]float64{"inflight_per_client": 1, "inflight": 1} {
		if got := metricValue(t, r, "sandbox_router_rejections_total", "limit", limit); got != want {
			t.Errorf("rejections{limit=%s} = %v, want %v", limit, got, want)
		}
	}
	// Slots come back: the first client is served again.
	waitFor(t, func() bool { return r.inflight.Load() == 0 })
	resp, err = clientFrom("127.0.0.1").Do(sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after release: status %d", resp.StatusCode)
	}
}

// runRouter serves r through Run on loopback listeners until the test
// ends, and returns the proxy address.
func runRouter(t *testing.T, so ServeOptions) (*Router, string) {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	o := DefaultOptions()
	pod := sandboxPod("team-a", "sb-1", "127.0.0.1")
	o.KubeClient, o.AllowLoopbackPodIP, o.Logger = k8sfake.NewClientset(pod), true, logger
	o.AgentsClient = newAgentsClient(t, sandboxFor(pod))
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	so.HTTPAddr, so.ProbeAddr = "127.0.0.1:0", "127.0.0.1:0"
	so.ShutdownTimeout = 5 * time.Second
	ls, err := Listen(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ls, so) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	probe := "http://" + ls.Probe.Addr().String() + "/readyz"
	waitFor(t, func() bool {
		resp, err := noRedirectClient().Get(probe)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r, ls.HTTP.Addr().String()
}

// healthz sends GET /healthz on c and reads the answer within attackWait.
func healthz(c net.Conn, br *bufio.Reader) (*http.Response, error) {
	_ = c.SetDeadline(time.Now().Add(attackWait))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// TestAttackConnectionFlood: one client opens connections and keeps them.
// Past its per-client share they are closed at once, so other clients
// still get in; past the listener's total, new connections wait until a
// slot frees instead of costing the router a goroutine and a buffer each.
func TestAttackConnectionFlood(t *testing.T) {
	r, addr := runRouter(t, ServeOptions{MaxConnections: 4, MaxConnectionsPerClient: 2})
	open := func(ip string) net.Conn {
		t.Helper()
		c := dialFrom(t, ip, addr)
		resp, err := healthz(c, bufio.NewReader(c))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection from %s: %v %v", ip, resp, err)
		}
		return c
	}
	a1 := open("127.0.0.1")
	open("127.0.0.1")

	// The flooding client's next connection is closed unanswered.
	a3 := dialFrom(t, "127.0.0.1", addr)
	if resp, err := healthz(a3, bufio.NewReader(a3)); err == nil {
		t.Fatalf("a third connection from the same client was served: %s", resp.Status)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection from the same client was neither served nor closed: %v", err)
	}
	if got := metricValue(t, r, "sandbox_router_rejections_total", "limit", "connections_per_client"); got != 1 {
		t.Errorf("rejections{limit=connections_per_client} = %v, want 1", got)
	}

	// Another client is still served, up to the total.
	open("127.0.0.2")
	open("127.0.0.2")

	// Full: a new client waits, unserved, until a slot frees.
	c := dialFrom(t, "127.0.0.3", addr)
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection beyond --max-connections was handled (%v)", err)
	}
	a1.Close()
	_ = c.SetReadDeadline(time.Now().Add(attackWait))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection was not served once a slot freed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestAttackHugeRequestHeaders: a client sends hundreds of kilobytes of
// headers on many connections; net/http would buffer up to 1 MiB each.
func TestAttackHugeRequestHeaders(t *testing.T) {
	_, addr := runRouter(t, ServeOptions{})
	c := dialFrom(t, "127.0.0.1", addr)
	_ = c.SetDeadline(time.Now().Add(attackWait))
	go func() {
		// The router may stop reading (and reset) before all of it is sent.
		_, _ = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: router\r\nX-Junk: %s\r\n\r\n", strings.Repeat("a", 256<<10))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("256 KiB of request headers: status %d, want 431", resp.StatusCode)
	}
}

// waitGoroutines waits until the goroutine count is back to baseline.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(attackWait)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttackClientNeverReads: a client asks for a large (here endless)
// response and never reads it. Without write deadlines the router's
// handler, the upstream connection and the sandbox's writer stay blocked
// forever; with them the connection is closed once a write made no
// progress for WriteTimeout.
func TestAttackClientNeverReads(t *testing.T) {
	upstreamDone := make(chan error, 1)
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				upstreamDone <- err
				return
			}
		}
	})
	r, _ := newTestRouter(t, func(o *Options) { o.WriteTimeout = 300 * time.Millisecond }, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	baseline := runtime.NumGoroutine()

	// Default socket buffers: a tiny receive buffer would make the drain
	// below crawl through zero-window probes.
	c := dialFrom(t, "127.0.0.1", strings.TrimPrefix(front.URL, "http://"))
	_, _ = fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: router\r\nX-Sandbox-ID: sb-1\r\nX-Sandbox-Namespace: team-a\r\nX-Sandbox-Port: %s\r\n\r\n", be.port)

	select {
	case err := <-upstreamDone:
		t.Logf("the sandbox's write failed as it should: %v", err)
	case <-time.After(attackWait):
		t.Fatal("the router still relays to a client that has read nothing")
	}
	waitFor(t, func() bool { return r.inflight.Load() == 0 })
	// The client finds its connection closed after what was buffered.
	_ = c.SetReadDeadline(time.Now().Add(attackWait))
	if n, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client connection left open after %d bytes", n)
	}
	c.Close()
	waitGoroutines(t, baseline)
}

// upgrade opens a WebSocket-style upgrade through front to the sandbox
// port and returns the client side once the 101 arrived.
func upgrade(t *testing.T, front *httptest.Server, port int) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", strings.TrimPrefix(front.URL, "http://"))
	_ = c.SetDeadline(time.Now().Add(attackWait))
	if _, err := fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: router\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"X-Sandbox-ID: sb-1\r\nX-Sandbox-Namespace: team-a\r\nX-Sandbox-Port: %d\r\n\r\n", port); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %d", resp.StatusCode)
	}
	return c, br
}

const switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// TestAttackIdleUpgradedTunnel: upgraded connections have no end-to-end
// deadline, so a silent or non-reading peer on either side would pin the
// tunnel (two connections, three goroutines) forever.
func TestAttackIdleUpgradedTunnel(t *testing.T) {
	opts := func(idle, write time.Duration) func(*Options) {
		return func(o *Options) { o.TunnelIdleTimeout, o.WriteTimeout = idle, write }
	}

	t.Run("silent both ways", func(t *testing.T) {
		upstreamSaw := make(chan error, 1)
		up := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
			_, _ = io.WriteString(c, switched)
			_ = c.SetReadDeadline(time.Now().Add(attackWait))
			_, err := io.Copy(io.Discard, c)
			upstreamSaw <- err
		})
		r, _ := newTestRouter(t, opts(300*time.Millisecond, time.Minute), sandboxPod("team-a", "sb-1", "127.0.0.1"))
		front := frontend(t, r)
		c, br := upgrade(t, front, up.port)
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("idle tunnel still open on the client side")
		}
		c.Close()
		if err := <-upstreamSaw; err != nil {
			t.Errorf("sandbox side of the idle tunnel not closed by the router: %v", err)
		}
		waitFor(t, func() bool { return r.inflight.Load() == 0 })
	})

	t.Run("sandbox never reads", func(t *testing.T) {
		stop := make(chan struct{})
		up := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
			_, _ = io.WriteString(c, switched)
			<-stop
		})
		defer close(stop)
		r, _ := newTestRouter(t, opts(time.Hour, 300*time.Millisecond), sandboxPod("team-a", "sb-1", "127.0.0.1"))
		front := frontend(t, r)
		c, _ := upgrade(t, front, up.port)
		chunk := []byte(strings.Repeat("y", 32<<10))
		var err error
		for err == nil {
			_, err = c.Write(chunk)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the router kept the tunnel open while the sandbox read nothing")
		}
		waitFor(t, func() bool { return r.inflight.Load() == 0 })
	})

	t.Run("client never reads", func(t *testing.T) {
		upstreamSaw := make(chan error, 1)
		up := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
			_, _ = io.WriteString(c, switched)
			_ = c.SetWriteDeadline(time.Now().Add(attackWait))
			chunk := []byte(strings.Repeat("z", 32<<10))
			for {
				if _, err := c.Write(chunk); err != nil {
					upstreamSaw <- err
					return
				}
			}
		})
		r, _ := newTestRouter(t, opts(time.Hour, 300*time.Millisecond), sandboxPod("team-a", "sb-1", "127.0.0.1"))
		front := frontend(t, r)
		upgrade(t, front, up.port)
		if err := <-upstreamSaw; errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the router kept the tunnel open while the client read nothing")
		}
		waitFor(t, func() bool { return r.inflight.Load() == 0 })
	})

	t.Run("one-way traffic is not idle", func(t *testing.T) {
		const ticks = 100
		up := newHostileUpstream(t, func(c net.Conn, _ *http.Request) {
			_, _ = io.WriteString(c, switched)
			for range ticks {
				if _, err := c.Write([]byte{'.'}); err != nil {
					return
				}
				time.Sleep(25 * time.Millisecond)
			}
			_, _ = io.Copy(io.Discard, c)
		})
		// 2.5s of traffic from the sandbox only, against a 1s idle bound.
		r, _ := newTestRouter(t, opts(time.Second, time.Minute), sandboxPod("team-a", "sb-1", "127.0.0.1"))
		front := frontend(t, r)
		c, br := upgrade(t, front, up.port)
		_ = c.SetReadDeadline(time.Now().Add(attackWait))
		got, err := io.ReadAll(br)
		if len(got) != ticks {
			t.Errorf("client got %d of %d bytes before the tunnel closed (%v)", len(got), ticks, err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("tunnel not closed once both sides went idle")
		}
		waitFor(t, func() bool { return r.inflight.Load() == 0 })
	})
}
