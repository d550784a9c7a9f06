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
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

// namespaceLabelName is the label of the per-namespace series.
const namespaceLabelName = "sandbox_namespace"

// noNamespace is the sandbox_namespace label of requests that never
// reached a known namespace. Its series are never removed: they stand for
// every unknown namespace at once.
const noNamespace = "-"

// Upstream error reasons, the values of the reason label.
const (
	reasonDial    = "dial"
	reasonTimeout = "timeout"
	reasonTLS     = "tls"
	reasonEOF     = "eof"
	reasonOther   = "other"
	// reasonHeadersTooLarge: the sandbox's response headers exceeded
	// MaxResponseHeaderBytes.
	reasonHeadersTooLarge = "headers_too_large"
	// reasonInvalidStatus: the sandbox answered a status code outside
	// 100-599.
	reasonInvalidStatus = "invalid_status"
)

// Limits that refuse work, the values of the limit label of
// sandbox_router_rejections_total.
const (
	limitInflight             = "inflight"
	limitInflightPerClient    = "inflight_per_client"
	limitConnectionsPerClient = "connections_per_client"
)

// Metrics are the router's Prometheus collectors (§1.13). No label carries
// a sandbox name or UID, and sandbox_namespace is only ever a namespace
// that holds a cached sandbox, so label values stay bounded whatever
// clients send; a namespace's series are removed once it has gone idle
// (namespaceSeries), so they stay bounded over time too.
type Metrics struct {
	Requests         *prometheus.CounterVec
	RequestDuration  *prometheus.HistogramVec
	Inflight         prometheus.Gauge
	UpstreamErrors   *prometheus.CounterVec
	UpstreamRetries  *prometheus.CounterVec
	CacheInvalidated *prometheus.CounterVec
	AuthzDecisions   *prometheus.CounterVec
	CertReloads      *prometheus.CounterVec
	Rejections       *prometheus.CounterVec
	Wakes            *prometheus.CounterVec
	ActivityWrites   *prometheus.CounterVec
}

// NewMetrics builds the collectors and registers them, and
// sandbox_router_build_info, on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_requests_total",
			Help: "Requests handled by the proxy listeners, by method, status code and sandbox namespace.",
		}, []string{"method", "code", namespaceLabelName}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_router_request_duration_seconds",
			Help:    "Request duration from receipt to the end of the response (for upgrades, of the connection).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180},
		}, []string{"method", "code", namespaceLabelName}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_router_inflight_requests",
			Help: "Requests currently being handled, upgraded connections included.",
		}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_upstream_errors_total",
			Help: "Failed upstream round trips, after retries, by reason.",
		}, []string{namespaceLabelName, "reason"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_upstream_retries_total",
			Help: "Upstream dial retries.",
		}, []string{namespaceLabelName}),
		CacheInvalidated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_cache_invalidations_total",
			Help: "Cache entries found changed in the informers' stores when re-checked after a dead-host dial failure; requests never evict entries.",
		}, []string{namespaceLabelName}),
		AuthzDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_authz_decisions_total",
			Help: "Authorization verdicts, by decision.",
		}, []string{namespaceLabelName, "decision"}),
		CertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_cert_reloads_total",
			Help: "Serving certificate reloads, by outcome.",
		}, []string{"outcome"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_rejections_total",
			Help: "Requests answered 503 and connections closed at once because a concurrency limit was reached, by limit.",
		}, []string{"limit"}),
		Wakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_router_wakes_total",
			Help: "Requests held for a suspended or starting Sandbox opted into wake on request, by outcome: resumed (this request's patch resumed it), joined (another request or replica did), denied (by --wake-authz), failed (the patch failed or the hold timed out).",
		}, []string{"result"}),
		ActivityWrites: newActivityWrites(),
	}
	for _, c := range []prometheus.Collector{
		m.Requests, m.RequestDuration, m.Inflight, m.UpstreamErrors, m.UpstreamRetries,
		m.CacheInvalidated, m.AuthzDecisions, m.CertReloads, m.Rejections, m.Wakes, m.ActivityWrites, BuildInfo(version.Get()),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// namespaced lists the vectors labelled sandbox_namespace, whose series
// namespaceSeries removes when a namespace goes idle. A new one must be
// listed here.
func (m *Metrics) namespaced() []partialDeleter {
	return []partialDeleter{m.Requests, m.RequestDuration, m.UpstreamErrors, m.UpstreamRetries, m.CacheInvalidated, m.AuthzDecisions}
}

// NewRegistry returns a private registry (never the global default) with
// the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// BuildInfo is sandbox_router_build_info: constant 1, labelled with the
// build.
func BuildInfo(v version.Info) prometheus.Collector {
	return metrics.NamedBuildInfo("sandbox_router_build_info", "Build information of the running router; always 1.", v)
}

// methodLabel folds methods into a closed set: the method is client input.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// codeLabels maps every status code the router can answer with to its
// code label: the code itself when net/http knows it, its class ("2xx")
// otherwise. The code comes from the sandbox, so the label set must not be
// whatever it sends; the table also spares a strconv per request.
var codeLabels = func() (t [600]string) {
	for c := range t {
		switch {
		case c < 100:
			t[c] = "other"
		case http.StatusText(c) != "":
			t[c] = strconv.Itoa(c)
		default:
			t[c] = strconv.Itoa(c/100) + "xx"
		}
	}
	return t
}()

// codeLabel is the code label of status code c.
func codeLabel(c int) string {
	if c < 0 || c >= len(codeLabels) {
		return "other"
	}
	return codeLabels[c]
}
