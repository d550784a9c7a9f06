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

package framework

import (
	"net/http"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestLog records the requests the controllers send, except watches
// (held open for minutes, they say nothing about a hot loop). Pass its
// Wrap as ControllerOptions.WrapTransport.
type RequestLog struct {
	mu   sync.Mutex
	seen []string
}

// Wrap is a ControllerOptions.WrapTransport.
func (l *RequestLog) Wrap(next http.RoundTripper) http.RoundTripper {
	return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("watch") != "true" {
			l.mu.Lock()
			l.seen = append(l.seen, req.Method+" "+req.URL.Path)
			l.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

// Mark is the position of the next request: Since(Mark()) lists what is
// sent from now on.
func (l *RequestLog) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// Since lists the requests ("VERB /path") sent after mark.
func (l *RequestLog) Since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen[mark:]...)
}

// RoundTripperFunc is a function as an http.RoundTripper (for
// ControllerOptions.WrapTransport).
type RoundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// Syncs counts one controller's passes so far, from its reconcile metrics.
type Syncs struct{ Total, Errors float64 }

// Syncs reads the reconcile counters of the controller named name.
func (c *Controllers) Syncs(t testing.TB, name string) Syncs {
	t.Helper()
	return Syncs{
		Total:  c.Counter(t, "controller_runtime_reconcile_total", "controller", name),
		Errors: c.Counter(t, "controller_runtime_reconcile_errors_total", "controller", name),
	}
}

// Counter sums the samples of the counter metric whose label has value.
func (c *Controllers) Counter(t testing.TB, metric, label, value string) float64 {
	t.Helper()
	return GatheredCounter(t, c.Registry, metric, label, value)
}

// GatheredCounter sums the samples of the counter metric in g whose label
// has value (0 when there are none).
func GatheredCounter(t testing.TB, g prometheus.Gatherer, metric, label, value string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
