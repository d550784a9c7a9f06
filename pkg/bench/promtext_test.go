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
	"testing"

	"github.com/google/go-cmp/cmp"
)

const apiserverBefore = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 10
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="status",verb="PUT",version="v1beta1"} 4
apiserver_request_total{code="409",component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="status",verb="PUT",version="v1beta1"} 1
apiserver_request_total_other{verb="POST"} 99
apiserver_request_duration_seconds_bucket{verb="POST",le="0.1"} 5
`

const apiserverAfter = `apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 310
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 310
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="status",verb="PUT",version="v1beta1"} 8
apiserver_request_total{code="409",component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="status",verb="PUT",version="v1beta1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="DELETE",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="patch",version="v1"} 2 1700000000000
`

func TestAPIServerWritesDiff(t *testing.T) {
	before, err := ParseAPIServerWrites([]byte(apiserverBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseAPIServerWrites([]byte(apiserverAfter))
	if err != nil {
		t.Fatal(err)
	}
	got := DiffCounters(before, after)
	want := map[string]float64{
		"pods POST":                            300,
		"pods/binding POST":                    300,
		"sandboxes.agents.x-k8s.io/status PUT": 5, // conflicts count: the server paid for them
		"configmaps DELETE":                    1, // new series
		"nodes/status PATCH":                   2, // lower-case verb, with a timestamp
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if Total(got) != 608 {
		t.Errorf("Total = %v, want 608", Total(got))
	}
}

// The server time of writes is the mean of the window: the sum and count
// deltas of apiserver_request_duration_seconds, summed over codes and
// versions of one key, reads left out.
func TestAPIServerWriteTimes(t *testing.T) {
	const before = `apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 1.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 100
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 9
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 3
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1",le="0.005"} 90
`
	const after = `apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 1.9
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 300
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="",verb="PATCH",version="v1beta1"} 0.02
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="",verb="PATCH",version="v1beta1"} 4
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 0.04
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="agents.x-k8s.io",resource="sandboxes",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 2
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 12
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 4
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="DELETE",version="v1"} 0.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="DELETE",version="v1"} 0
`
	b, err := ParseAPIServerWriteTimes([]byte(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAPIServerWriteTimes([]byte(after))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"configmaps POST":                 2,  // 0.4 s over 200 requests
		"sandboxes.agents.x-k8s.io PATCH": 10, // both versions: 0.06 s over 6
	}
	if diff := cmp.Diff(want, a.MeanMsSince(b)); diff != "" {
		t.Errorf("mean server ms (-want,+got):\n%s", diff)
	}
}

func TestDiffCountersReset(t *testing.T) {
	got := DiffCounters(map[string]float64{"a": 100, "b": 5}, map[string]float64{"a": 7, "b": 5})
	if diff := cmp.Diff(map[string]float64{"a": 7}, got); diff != "" {
		t.Errorf("a restarted process counts from zero (-want,+got):\n%s", diff)
	}
}

func TestParseMetricLabels(t *testing.T) {
	text := `rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 12
rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 3
rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PUT"} 2
rest_client_requests_total{code="200",host="a\"b\\c,d}",method="PUT"} 1
process_resident_memory_bytes 4.2e+07
process_cpu_seconds_total 1.5
go_gc_gogc_percent 50
controller_runtime_reconcile_total{controller="sandbox",result="success"} 9
controller_runtime_reconcile_total{controller="sandbox",result="requeue_after"} 4
controller_runtime_reconcile_total{controller="sandboxwarmpool",result="success"} 2
agent_sandbox_conversion_reviews_total{path="fast"} 40
agent_sandbox_conversion_reviews_total{path="typed"} 3
`
	reqs, err := ParseMetric([]byte(text), "rest_client_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	if got := reqs[3].Labels["host"]; got != `a"b\c,d}` {
		t.Errorf("escaped label = %q", got)
	}
	snap, err := ParseControllerSnapshot([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	gogc := 50.0
	want := ControllerSnapshot{Requests: map[string]float64{"GET": 12, "POST": 3, "PUT": 3}, Passes: map[string]float64{"sandbox": 13, "sandboxwarmpool": 2},
		ConversionReviews: map[string]float64{"fast": 40, "typed": 3}, RSSBytes: 4.2e7, CPUSeconds: 1.5, GOGCPercent: &gogc}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	// A controller built without the Go collector's runtime metrics.
	snap, err = ParseControllerSnapshot([]byte("process_cpu_seconds_total 1.5\n"))
	if err != nil || snap.GOGCPercent != nil {
		t.Errorf("without go_gc_gogc_percent: GOGC %v, err %v; want nil, nil", snap.GOGCPercent, err)
	}
	if _, err := ParseMetric([]byte(`m{a="x} 1`), "m"); err == nil {
		t.Error("an unterminated label value parsed")
	}
}

func TestIsWriteVerb(t *testing.T) {
	for _, v := range []string{"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION", "create", "update", "patch", "delete"} {
		if !IsWriteVerb(v) {
			t.Errorf("%s is a write", v)
		}
	}
	for _, v := range []string{"GET", "LIST", "WATCH", "CONNECT", "get", "list", "watch"} {
		if IsWriteVerb(v) {
			t.Errorf("%s is not a write", v)
		}
	}
}

func TestEstimatedControllerWrites(t *testing.T) {
	c := Cost{APIWrites: map[string]float64{
		"pods POST":                              10,
		"pods PATCH":                             3,  // the controller's label patches
		"pods/binding POST":                      10, // scheduler
		"pods/status PATCH":                      10, // kwok
		"sandboxes.agents.x-k8s.io POST":         10,
		"sandboxes.agents.x-k8s.io/status PATCH": 10,
		"sandboxwarmpools.extensions.agents.x-k8s.io POST": 1, // the bench
		"events POST":                    7,  // core: kube-controller-manager's recorder
		"events.events.k8s.io POST":      30, // the scheduler
		"leases.coordination.k8s.io PUT": 4,
	}, BenchWrites: 1}
	if got := c.EstimatedControllerWrites(); got != 40 {
		t.Errorf("EstimatedControllerWrites = %v, want 40", got)
	}
}
