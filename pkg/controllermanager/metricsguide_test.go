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

package controllermanager

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
)

// metricsGuide lists every metric the controller and the router register.
const metricsGuide = "../../docs/guides/metrics.md"

// TestMetricsGuide holds the metrics guide to the code: each registered
// metric has a table row naming it and every one of its labels, and each
// row names a registered metric. The collectors come from the same
// constructors the binaries call; main's own registrations are repeated
// here (cmd/agent-sandbox-controller: registry, workqueue provider, REST
// client, forbidden-request and conversion webhook metrics), the
// controllers' come from building every controller.
func TestMetricsGuide(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rec := &describeRecorder{}

	// The registries of both binaries carry collectors that report
	// without labels being set (Go, process, build info): gather them.
	gathered := map[string][]string{}
	for _, reg := range []*prometheus.Registry{metrics.NewRegistry(), router.NewRegistry()} {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			var labels []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
			gathered[f.GetName()] = labels
		}
	}
	metrics.NewWorkqueueProvider(rec)
	metrics.NewRESTClientMetrics(rec)
	metrics.NewForbiddenRequests(rec)
	if err := conversion.Register(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := build(ctx, Config{Controllers: Enabled(true), Metrics: rec}, (&fakeClients{}).clients); err != nil {
		t.Fatal(err)
	}
	if _, err := router.NewMetrics(rec); err != nil {
		t.Fatal(err)
	}

	registered := map[string][]string{}
	for name, labels := range gathered {
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			registered[name] = labels
		}
	}
	for _, d := range rec.descs {
		name, labels := describe(t, d)
		registered[name] = labels
	}
	if len(registered) < 30 {
		t.Fatalf("found only %d metrics; the recorder is not seeing the collectors: %v", len(registered), registered)
	}

	raw, err := os.ReadFile(metricsGuide)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := row.FindStringSubmatch(line); m != nil && strings.Count(line, "|") >= 5 {
			rows[m[1]] = line
		}
	}
	for name, labels := range registered {
		line, ok := rows[name]
		if !ok {
			t.Errorf("%s: metric %s has no row", metricsGuide, name)
			continue
		}
		cells := strings.Split(line, " | ")
		for _, l := range labels {
			if !slices.Contains(strings.Split(cells[2], ", "), "`"+l+"`") {
				t.Errorf("%s: the row of %s does not list its label %s in the Labels column", metricsGuide, name, l)
			}
		}
	}
	for name := range rows {
		if _, ok := registered[name]; !ok {
			t.Errorf("%s: a row names %s, which neither binary registers", metricsGuide, name)
		}
	}
}

// describeRecorder is a Registerer that keeps the descriptions of what is
// registered: vectors without children gather nothing, but describe
// themselves.
type describeRecorder struct {
	descs []*prometheus.Desc
}

func (r *describeRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *describeRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *describeRecorder) Unregister(prometheus.Collector) bool { return false }

// describe reads a Desc's name and label names through the public API
// only: a constant metric built with the right number of label values is
// gathered like any other.
func describe(t *testing.T, d *prometheus.Desc) (string, []string) {
	t.Helper()
	for n := 0; n <= 16; n++ {
		values := make([]string, n)
		for i := range values {
			values[i] = "x"
		}
		m, err := prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...)
		if err != nil {
			continue
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(constCollector{d: d, m: m})
		families, err := reg.Gather()
		if err != nil || len(families) != 1 {
			t.Fatalf("gathering %v: %v", d, err)
		}
		var labels []string
		for _, l := range families[0].GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		return families[0].GetName(), labels
	}
	t.Fatalf("no label count fits %v", d)
	return "", nil
}

type constCollector struct {
	d *prometheus.Desc
	m prometheus.Metric
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }
