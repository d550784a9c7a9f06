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
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
)

// seriesOf lists the series (by family name) of g labelled with namespace
// ns.
func seriesOf(t *testing.T, g prometheus.Gatherer, ns string) []string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == namespaceLabelName && l.GetValue() == ns {
					out = append(out, f.GetName())
				}
			}
		}
	}
	return out
}

// A namespace's series stay while it holds a Sandbox or has a request in
// flight, and go once it has had neither for the grace period; another
// namespace's, and those of unknown namespaces ("-"), stay.
func TestNamespaceSeriesRemovedWhenIdle(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/hold" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	r, kube := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"), sandboxPod("team-b", "sb-2", "127.0.0.1"))
	front := frontend(t, r)
	// Registered after the servers', so it runs before their Close, which
	// would wait for a held request forever after a failed check.
	t.Cleanup(unblock)
	get := func(path, ns, id string) {
		t.Helper()
		resp := do(t, sandboxRequest(t, front, http.MethodGet, path, ns, id, be.portNum()))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	idle := func() {
		t.Helper()
		// The handler ends a request after its response reached the client.
		waitFor(t, func() bool { return r.inflight.Load() == 0 })
	}
	get("/", "team-a", "sb-1")
	get("/", "team-b", "sb-2")
	get("/", "unknown-ns", "sb-3")
	idle()
	teamA := seriesOf(t, r.Registry(), "team-a")
	if !slices.Contains(teamA, "sandbox_router_requests_total") || !slices.Contains(teamA, "sandbox_router_authz_decisions_total") {
		t.Fatalf("team-a series %v, want at least the request and authz counters", teamA)
	}

	now := time.Unix(1_000_000, 0)
	sweepAt := func(d time.Duration) []string {
		removed := r.series.sweep(now.Add(d))
		slices.Sort(removed)
		return removed
	}
	for _, d := range []time.Duration{0, seriesGrace, 10 * seriesGrace} {
		if removed := sweepAt(d); len(removed) != 0 {
			t.Fatalf("sweep at +%v removed %v while both namespaces hold a Sandbox", d, removed)
		}
	}

	// A request to team-a is in flight when its Sandbox goes.
	held := make(chan struct{})
	go func() {
		defer close(held)
		get("/hold", "team-a", "sb-1")
	}()
	waitFor(t, func() bool { return r.inflight.Load() == 1 })
	if err := r.opts.AgentsClient.AgentsV1beta1().Sandboxes("team-a").Delete(context.Background(), "sb-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kube.CoreV1().Pods("team-a").Delete(context.Background(), "sb-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !r.Cache().HasNamespace("team-a") })
	for _, d := range []time.Duration{11 * seriesGrace, 12 * seriesGrace, 13 * seriesGrace} {
		if removed := sweepAt(d); len(removed) != 0 {
			t.Fatalf("sweep at +%v removed %v while a team-a request is in flight", d, removed)
		}
	}
	unblock()
	<-held
	idle()

	// The first sweep to find team-a idle starts its grace.
	if removed := sweepAt(14 * seriesGrace); len(removed) != 0 {
		t.Errorf("first idle sweep removed %v, want nothing before the grace", removed)
	}
	if removed := sweepAt(15*seriesGrace - time.Nanosecond); len(removed) != 0 {
		t.Errorf("sweep within the grace removed %v", removed)
	}
	if got := seriesOf(t, r.Registry(), "team-a"); !slices.Contains(got, "sandbox_router_requests_total") {
		t.Errorf("team-a series %v within the grace, want them kept", got)
	}
	if diff := cmp.Diff([]string{"team-a"}, sweepAt(15*seriesGrace)); diff != "" {
		t.Errorf("namespaces removed once the grace passed (-want,+got):\n%s", diff)
	}
	if got := seriesOf(t, r.Registry(), "team-a"); len(got) != 0 {
		t.Errorf("team-a series %v left after the grace, want none", got)
	}
	if got := seriesOf(t, r.Registry(), "team-b"); !slices.Contains(got, "sandbox_router_requests_total") {
		t.Errorf("team-b series %v, want them kept: it still holds a Sandbox", got)
	}
	if got := seriesOf(t, r.Registry(), noNamespace); !slices.Contains(got, "sandbox_router_requests_total") {
		t.Errorf("%q series %v, want them kept", noNamespace, got)
	}
	if n := len(r.series.namespaces); n != 1 {
		t.Errorf("%d namespaces tracked, want team-b's only", n)
	}
}

// A request that took a namespace's label before a sweep removed the
// namespace, and begins only after, registers it again: the series it
// writes are removed by a later sweep, never left for good.
func TestNamespaceSeriesLateRequestRegistersAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := ktesting.NewTestContext(t)
	s := newNamespaceSeries(m, func(string) bool { return false }, logger)
	now := time.Unix(1_000_000, 0)

	s.begin("team-a")
	m.Requests.WithLabelValues("GET", "200", "team-a").Inc()
	s.end("team-a")
	s.sweep(now)
	if diff := cmp.Diff([]string{"team-a"}, s.sweep(now.Add(seriesGrace))); diff != "" {
		t.Fatalf("removed (-want,+got):\n%s", diff)
	}

	// The late request.
	s.begin("team-a")
	m.UpstreamErrors.WithLabelValues("team-a", reasonDial).Inc()
	s.end("team-a")
	if removed := s.sweep(now.Add(2 * seriesGrace)); len(removed) != 0 {
		t.Errorf("the sweep right after the late request removed %v, want a new grace", removed)
	}
	if diff := cmp.Diff([]string{"team-a"}, s.sweep(now.Add(3*seriesGrace))); diff != "" {
		t.Errorf("removed once the new grace passed (-want,+got):\n%s", diff)
	}
	if got := seriesOf(t, reg, "team-a"); len(got) != 0 {
		t.Errorf("series labelled team-a left: %v", got)
	}
}
