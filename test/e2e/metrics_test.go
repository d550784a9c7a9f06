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

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Runs after extensions_test.go (go test runs files in name order), so the
// claim metrics have samples.

// TestMetricsEndpoint: the controller serves its metrics under the names
// dashboards use, and every metric the shipped alerts query exists.
func TestMetricsEndpoint(t *testing.T) {
	// agent_sandboxes counts what exists at scrape time: make one.
	ns := newNamespace(t)
	createSandbox(t, ns, &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "counted"},
		Spec:       agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: podTemplate()}},
	})
	waitSandboxReady(t, ns, "counted")
	var text string
	eventually(t, "agent_sandboxes to count the ready Sandbox", func(ctx context.Context) (bool, error) {
		var err error
		if text, err = scrapeMetrics(ctx); err != nil {
			return false, err
		}
		for _, s := range parseMetrics(text) {
			if s.name == "agent_sandboxes" && s.labels["namespace"] == ns && s.labels["ready_condition"] == "true" &&
				s.labels["owned_by"] == "None" && s.value == 1 {
				return true, nil
			}
		}
		return false, nil
	})
	have := map[string]bool{}
	controllers := map[string]bool{}
	var fast, typed float64
	for _, s := range parseMetrics(text) {
		have[s.name] = true
		if s.name == "controller_runtime_reconcile_total" {
			controllers[s.labels["controller"]] = true
		}
		if s.name == "agent_sandbox_conversion_reviews_total" {
			switch s.labels["path"] {
			case "fast":
				fast = s.value
			case "typed":
				typed = s.value
			}
		}
	}
	for _, name := range []string{
		"agent_sandbox_build_info", "controller_runtime_reconcile_total", "agent_sandbox_api_forbidden_requests_total",
		"workqueue_depth", "rest_client_requests_total", "process_resident_memory_bytes",
		"agent_sandbox_claim_creation_total", "agent_sandbox_claim_controller_startup_latency_ms_bucket",
		"agent_sandbox_conversion_reviews_total",
	} {
		if !have[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	// While v1alpha1 is served, the API server converts every write of
	// the Sandbox above for its v1alpha1 cache, on the webhook's fast path.
	if _, err := kube.Discovery().ServerResourcesForGroupVersion(agentsv1alpha1.GroupVersion.String()); err == nil && fast == 0 {
		t.Errorf("v1alpha1 is served, yet no conversion review took the fast path (agent_sandbox_conversion_reviews_total by path: fast %v, typed %v)", fast, typed)
	}
	for _, c := range []string{"sandbox", "sandboxclaim", "sandboxwarmpool", "sandboxtemplate"} {
		if !controllers[c] {
			t.Errorf("controller_runtime_reconcile_total has no controller=%q", c)
		}
	}
	for _, name := range alertMetrics(t) {
		if !have[name] && !have[name+"_bucket"] {
			t.Errorf("the PrometheusRule queries %s, which the controller does not export", name)
		}
	}
}

// alertMetrics returns the metric names the shipped PrometheusRule queries
// (up is Prometheus' own).
func alertMetrics(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	rules := filepath.Join(filepath.Dir(file), "..", "..", "manifests", "components", "monitoring", "prometheus_rule.yaml")
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	keywords := map[string]bool{"absent": true, "sum": true, "by": true, "rate": true, "histogram_quantile": true, "up": true, "le": true}
	seen := map[string]bool{}
	ident := regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*\s*[{\[]`)
	for _, line := range strings.Split(string(b), "\n") {
		expr, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:")
		if !ok {
			continue
		}
		for _, m := range ident.FindAllString(expr, -1) {
			name := strings.TrimRight(m, " {[")
			if !keywords[name] {
				seen[strings.TrimSuffix(name, "_bucket")] = true
			}
		}
	}
	if len(seen) < 4 {
		t.Fatalf("found only %v in %s: the expression parser is broken", seen, rules)
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
