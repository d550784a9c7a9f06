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

import "github.com/prometheus/client_golang/prometheus"

// Results of an Event write, the closed set of the result label of
// agent_sandbox_event_writes_total.
const (
	// EventCreated: a new Event was created.
	EventCreated = "created"
	// EventSeries: an Event's series (count, last seen) was written.
	EventSeries = "series"
	// EventDropped: the controller's queue of Events to write was full
	// (the API server is slow or down); the Event was never sent.
	EventDropped = "dropped"
	// EventFailed: the API server refused the Event, or it kept failing
	// past the retries.
	EventFailed = "failed"
)

// EventMetrics count the controllers' Event writes, so an operator sees
// Events lost to a slow API server instead of wondering why one is
// missing.
type EventMetrics struct {
	writes *prometheus.CounterVec
}

// NewEventMetrics creates the counter and registers it on reg.
func NewEventMetrics(reg prometheus.Registerer) *EventMetrics {
	m := &EventMetrics{writes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agent_sandbox_event_writes_total",
		Help: "Event writes per controller, by result (created, series, dropped, failed).",
	}, []string{"controller", "result"})}
	reg.MustRegister(m.writes)
	return m
}

// Inc counts one write of controller with result. A nil EventMetrics
// counts nothing (unit tests).
func (m *EventMetrics) Inc(controller, result string) {
	if m == nil {
		return
	}
	m.writes.WithLabelValues(controller, result).Inc()
}
