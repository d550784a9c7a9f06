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

package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestMinimalProxyLoad drives the load generator through the minimal
// proxy to an upstream, all on loopback: every request is answered 200
// through a reused connection and counted.
func TestMinimalProxyLoad(t *testing.T) {
	var hits, conns atomic.Int64
	var forwarded atomic.Value
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		forwarded.Store(r.Header.Get("X-Forwarded-For"))
		upstreamHandler().ServeHTTP(w, r)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeMinimalProxy(ctx, l, up.URL) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeMinimalProxy: %v", err)
		}
	}()

	client := newLoadClient(4)
	defer client.CloseIdleConnections()
	res, err := runLoad(context.Background(), client, "http://"+l.Addr().String()+"/x", http.Header{"X-Sandbox-Id": {"a"}},
		LoadSpec{Clients: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("requests %d, errors %d; want some and none", res.Requests, res.Errors)
	}
	if int64(res.Requests) > hits.Load() {
		t.Errorf("counted %d requests, the upstream saw %d", res.Requests, hits.Load())
	}
	if res.Latency.N != res.Requests || res.Latency.P50Ms <= 0 || res.ReqPerSec <= 0 {
		t.Errorf("bad summary %+v", res)
	}
	if got := forwarded.Load(); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want 127.0.0.1", got)
	}
	// Keep-alive on both legs: a handful of upstream connections for
	// hundreds of requests.
	if n := conns.Load(); n > 8 {
		t.Errorf("the proxy opened %d upstream connections for 4 clients", n)
	}
}

func TestRunLoadCountsErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer up.Close()
	client := newLoadClient(2)
	defer client.CloseIdleConnections()
	res, err := runLoad(context.Background(), client, up.URL, http.Header{}, LoadSpec{Clients: 2, Duration: 100 * time.Millisecond})
	if err == nil || res.Errors == 0 || res.Requests != 0 {
		t.Fatalf("a 404 upstream gave %+v, err %v; want only errors", res, err)
	}
}

func TestRouterSummarizeMedians(t *testing.T) {
	lr := func(rps, p50 float64) LoadResult {
		return LoadResult{Requests: 10, ReqPerSec: rps, Latency: Summary{P50Ms: p50}}
	}
	r := &RouterResult{PerRound: []RouterRound{
		{Direct: lr(3000, 0.3), Minimal: lr(1000, 1.0), Router: lr(900, 1.1), RouterCPUSec: 0.01},
		{Direct: lr(3000, 0.3), Minimal: lr(1000, 1.0), Router: lr(500, 2.0), RouterCPUSec: 0.01},
		{Direct: lr(3000, 0.3), Minimal: lr(2000, 0.5), Router: lr(1900, 0.55), RouterCPUSec: 0.01},
	}}
	r.summarize()
	// Per-round ratios 0.9, 0.5, 0.95 → 0.9; p50 1.1, 2.0, 1.1 → 1.1.
	if r.RPSRatio != 0.9 || r.P50Ratio != 1.1 {
		t.Errorf("ratios %v %v, want 0.9 1.1", r.RPSRatio, r.P50Ratio)
	}
	if r.Minimal.ReqPerSec != 1000 || r.Router.Requests != 30 {
		t.Errorf("minimal %+v router %+v", r.Minimal, r.Router)
	}
	if r.Router.CPUMicrosPerRequest == nil || *r.Router.CPUMicrosPerRequest != 1000 {
		t.Errorf("router CPU per request %v, want 1000 µs", r.Router.CPUMicrosPerRequest)
	}
	if r.Direct.CPUMicrosPerRequest != nil {
		t.Error("the direct path has no proxy CPU")
	}
}
