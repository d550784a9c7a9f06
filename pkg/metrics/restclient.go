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

package metrics

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// RESTClientMetrics are client-go's request metrics under the names
// controller-runtime gives them (rest_client_*), which the reference's
// dashboards and our alert on forbidden calls query. Labels carry the host,
// never the URL, so cardinality stays bounded.
type RESTClientMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	rateLimiter *prometheus.HistogramVec
}

// NewRESTClientMetrics creates the metrics and registers them on reg.
// Install hooks them into client-go; keep them separate so tests can read
// the vectors without touching client-go's process-wide hooks.
func NewRESTClientMetrics(reg prometheus.Registerer) *RESTClientMetrics {
	m := &RESTClientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rest_client_requests_total",
			Help: "Number of HTTP requests to the API server, partitioned by status code, method, and host.",
		}, []string{"code", "method", "host"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rest_client_request_duration_seconds",
			Help:    "Request latency to the API server in seconds, by verb and host.",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60},
		}, []string{"verb", "host"}),
		rateLimiter: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rest_client_rate_limiter_duration_seconds",
			Help:    "Time requests waited in the client-side rate limiter, by verb and host.",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60},
		}, []string{"verb", "host"}),
	}
	reg.MustRegister(m.requests, m.latency, m.rateLimiter)
	return m
}

// Install makes every client-go client of this process report to m. client-go
// accepts one registration per process (later calls are ignored), so the
// binary calls it once, before it builds any client.
func (m *RESTClientMetrics) Install() {
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestResult:      resultAdapter{m.requests},
		RequestLatency:     latencyAdapter{m.latency},
		RateLimiterLatency: latencyAdapter{m.rateLimiter},
	})
}

type resultAdapter struct{ v *prometheus.CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.v.WithLabelValues(code, method, host).Inc()
}

type latencyAdapter struct{ v *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.v.WithLabelValues(verb, u.Host).Observe(latency.Seconds())
}
