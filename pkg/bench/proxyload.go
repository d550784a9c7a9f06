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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"
)

// LoadResult is one closed-loop load run against one URL.
type LoadResult struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	ReqPerSec float64 `json:"reqPerSec"`
	Latency   Summary `json:"latency"`
}

// LoadSpec is the shape of a closed-loop load run.
type LoadSpec struct {
	// Clients is the number of concurrent keep-alive clients, each sending
	// its next request when the previous answer was read.
	Clients int
	// Warmup runs before the measured Duration and is discarded: it opens
	// the connections and warms the proxies' pools.
	Warmup, Duration time.Duration
}

// newLoadClient is one keep-alive pool with room for every client, so no
// connection is ever opened during the measurement.
func newLoadClient(clients int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        clients * 2,
		MaxIdleConnsPerHost: clients * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}, Timeout: 10 * time.Second}
}

// runLoad sends GET target with header h from spec.Clients goroutines
// until the warm-up and the measured duration are over. A request counts
// when it was sent inside the measured window; anything but a 200 with the
// whole body read is an error.
func runLoad(ctx context.Context, client *http.Client, target string, h http.Header, spec LoadSpec) (LoadResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
	if err != nil {
		return LoadResult{}, err
	}
	req.Header = h
	start := time.Now()
	from, until := start.Add(spec.Warmup), start.Add(spec.Warmup+spec.Duration)
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr error
	)
	var wg sync.WaitGroup
	for range spec.Clients {
		wg.Go(func() {
			// One request per client, reused once its answer was read, as
			// net/http allows; never shared between goroutines.
			req := req.Clone(ctx)
			lat := make([]time.Duration, 0, 4096)
			n := 0
			var cerr error
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				err := getOnce(client, req)
				d := time.Since(t0)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					n++
					if cerr == nil {
						cerr = err
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			errs += n
			if firstErr == nil {
				firstErr = cerr
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadResult{}, err
	}
	secs := spec.Duration.Seconds()
	r := LoadResult{Requests: len(all), Errors: errs, Seconds: secs, ReqPerSec: round3(float64(len(all)) / secs), Latency: Summarize(all)}
	if errs > 0 && len(all) == 0 {
		return r, fmt.Errorf("every request to %s failed, first: %w", target, firstErr)
	}
	if errs > 0 {
		return r, fmt.Errorf("%d of %d requests to %s failed, first: %w", errs, errs+len(all), target, firstErr)
	}
	return r, nil
}

func getOnce(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// upstreamBody is the small answer of the upstream server.
var upstreamBody = []byte(`{"status":"ok","from":"sandbox-bench upstream"}` + "\n")

// upstreamHandler answers every request with upstreamBody.
func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(upstreamBody)
	})
}

// NewMinimalProxy is the yardstick the router is compared with: an
// httputil.ReverseProxy with nothing but the URL rewrite and
// X-Forwarded-*, on a transport with the default settings except an idle
// pool large enough for the load (the default keeps 2 idle connections
// per host, which would measure connection churn instead of proxying).
func NewMinimalProxy(upstream *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 100
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
		},
		Transport: tr,
	}
}

// ServeMinimalProxy serves NewMinimalProxy(upstream) on l until ctx ends.
// It is what 'sandbox-bench minimal-proxy' runs as a process of its own.
func ServeMinimalProxy(ctx context.Context, l net.Listener, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("bad upstream URL %q", upstream)
	}
	srv := &http.Server{Handler: NewMinimalProxy(u), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// median of a non-empty slice (the mean of the middle two for an even
// count); 0 when empty.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
