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
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// WorkqueueProvider implements workqueue.MetricsProvider on a registry,
// with the standard workqueue_* names labelled by queue name. Install it
// with workqueue.SetProvider before any queue is built.
type WorkqueueProvider struct {
	depth                                   *prometheus.GaugeVec
	addsTotal, retriesTotal                 *prometheus.CounterVec
	latency, workDuration                   *prometheus.HistogramVec
	unfinishedWork, longestRunningProcessor *prometheus.GaugeVec
}

var _ workqueue.MetricsProvider = (*WorkqueueProvider)(nil)

// NewWorkqueueProvider registers the workqueue metrics on reg.
func NewWorkqueueProvider(reg prometheus.Registerer) *WorkqueueProvider {
	labels := []string{"name"}
	buckets := prometheus.ExponentialBuckets(10e-9, 10, 12)
	p := &WorkqueueProvider{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_depth", Help: "Current depth of the workqueue.",
		}, labels),
		addsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_adds_total", Help: "Total number of adds handled by the workqueue.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "workqueue_queue_duration_seconds", Help: "How long an item stays in the workqueue before being requested.",
			Buckets: buckets,
		}, labels),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "workqueue_work_duration_seconds", Help: "How long processing an item from the workqueue takes.",
			Buckets: buckets,
		}, labels),
		unfinishedWork: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_unfinished_work_seconds",
			Help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck threads.",
		}, labels),
		longestRunningProcessor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_longest_running_processor_seconds",
			Help: "Seconds the longest running processor of the workqueue has been running.",
		}, labels),
		retriesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_retries_total", Help: "Total number of retries handled by the workqueue.",
		}, labels),
	}
	reg.MustRegister(p.depth, p.addsTotal, p.latency, p.workDuration, p.unfinishedWork, p.longestRunningProcessor, p.retriesTotal)
	return p
}

// NewDepthMetric is the queue's depth gauge.
func (p *WorkqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.WithLabelValues(name)
}

// NewAddsMetric counts the queue's adds.
func (p *WorkqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.addsTotal.WithLabelValues(name)
}

// NewLatencyMetric observes how long items wait in the queue.
func (p *WorkqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

// NewWorkDurationMetric observes how long processing an item takes.
func (p *WorkqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

// NewUnfinishedWorkSecondsMetric is the work in progress not yet observed by the duration metric.
func (p *WorkqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinishedWork.WithLabelValues(name)
}

// NewLongestRunningProcessorSecondsMetric is how long the longest running worker has been at its item.
func (p *WorkqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longestRunningProcessor.WithLabelValues(name)
}

// NewRetriesMetric counts the queue's rate-limited re-adds.
func (p *WorkqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retriesTotal.WithLabelValues(name)
}
