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
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reconcile results, the closed set of the result label.
const (
	ResultSuccess      = "success"
	ResultError        = "error"
	ResultRequeueAfter = "requeue_after"
)

// ReconcileMetrics are the per-controller sync metrics. Their names are the
// reference's (controller-runtime's), because existing dashboards and
// stress reports query them by controller name.
type ReconcileMetrics struct {
	total    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewReconcileMetrics registers the reconcile metrics on reg.
func NewReconcileMetrics(reg prometheus.Registerer) *ReconcileMetrics {
	m := &ReconcileMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_total", Help: "Total number of reconciliations per controller.",
		}, []string{"controller", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_errors_total", Help: "Total number of reconciliation errors per controller.",
		}, []string{"controller"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "controller_runtime_reconcile_time_seconds", Help: "Length of time per reconciliation per controller.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7,
				0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60},
		}, []string{"controller"}),
	}
	reg.MustRegister(m.total, m.errors, m.duration)
	return m
}

// Init exports controller's counters at zero before its first sync, as
// controller-runtime does: a series that appears only with the first
// error makes rate() blind to that error (there is no earlier sample to
// compare with) and leaves the series absent on a healthy controller,
// which alerts and dashboards cannot tell from a scrape that is missing.
func (m *ReconcileMetrics) Init(controller string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(controller).Add(0)
	for _, result := range []string{ResultSuccess, ResultError, ResultRequeueAfter} {
		m.total.WithLabelValues(controller, result).Add(0)
	}
}

// Observe records one sync of controller that started at start.
func (m *ReconcileMetrics) Observe(controller, result string, start time.Time) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(controller, result).Inc()
	if result == ResultError {
		m.errors.WithLabelValues(controller).Inc()
	}
	m.duration.WithLabelValues(controller).Observe(time.Since(start).Seconds())
}
