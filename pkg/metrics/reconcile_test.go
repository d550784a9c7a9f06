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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// A controller's counters are exported at zero from its start, before any
// sync and whether or not one ever fails: the shipped PrometheusRule's
// rate(controller_runtime_reconcile_errors_total[5m]) needs the series
// before the first error to see it.
func TestReconcileCountersExportedAtZero(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewReconcileMetrics(reg)
	names := []string{"controller_runtime_reconcile_errors_total", "controller_runtime_reconcile_total"}
	m.Init("sandbox")
	want := map[string]float64{
		"controller_runtime_reconcile_errors_total{controller=sandbox}":               0,
		"controller_runtime_reconcile_total{controller=sandbox,result=error}":         0,
		"controller_runtime_reconcile_total{controller=sandbox,result=requeue_after}": 0,
		"controller_runtime_reconcile_total{controller=sandbox,result=success}":       0,
	}
	if diff := cmp.Diff(want, counters(t, reg, names...)); diff != "" {
		t.Errorf("after Init (-want,+got):\n%s", diff)
	}

	m.Observe("sandbox", ResultError, time.Now())
	want["controller_runtime_reconcile_errors_total{controller=sandbox}"] = 1
	want["controller_runtime_reconcile_total{controller=sandbox,result=error}"] = 1
	if diff := cmp.Diff(want, counters(t, reg, names...)); diff != "" {
		t.Errorf("after a failed sync (-want,+got):\n%s", diff)
	}
	var none *ReconcileMetrics
	none.Init("sandbox") // a controller run without metrics
}
