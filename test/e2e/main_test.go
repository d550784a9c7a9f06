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

// Package e2e runs against whatever cluster KUBECONFIG names, with the
// agent-sandbox manifests and the router deployed: 'make e2e' on kind (the
// controller and the router in their Deployments, sandboxes running the
// sandbox-runtime image) and 'make e2e-local' on the source-built local
// cluster (the controller and the router local processes impersonating
// their ServiceAccounts, sandboxes running on the process node, a
// development kubelet that runs the runtime as a local process). Both run
// the controller and the router with exactly the release RBAC and the
// router with its shipped authorization (subjectaccessreview, tokens for
// its audience); TestMain fails the run when the controller saw any
// forbidden (403) API call.
//
// The data-plane tests (dataplane_test.go, plugin_test.go) run commands
// and move files through the router with the Go SDK and with the
// kubectl-sandbox plugin, which TestMain builds.
//
// Environment:
//
//	KUBECONFIG            the cluster under test (required)
//	E2E_METRICS_URL       the controller's /metrics when it runs outside the
//	                      cluster; default: through the API server's proxy
//	                      to Service agent-sandbox-system/agent-sandbox-controller
//	E2E_ROUTER_URL        the router when it runs outside the cluster; default:
//	                      a port-forward to Service
//	                      agent-sandbox-system/sandbox-router-svc (the plugin
//	                      opens its own, as it does for users)
//	E2E_SANDBOX_IMAGE     the image control-plane-only sandbox pods run
//	                      (default pause)
//	E2E_RUNTIME_IMAGE     the image of the data-plane tests' sandboxes
//	                      (default the sandbox-runtime image make e2e loads)
//	E2E_PROCESS_NODE      "true": data-plane sandboxes run on the process
//	                      node (their Pods select it, their volumes are of
//	                      its StorageClass); make e2e-local sets it
//	E2E_TIMEOUT           how long one wait may take (default 3m)
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

const (
	controllerNamespace = "agent-sandbox-system"
	controllerService   = "agent-sandbox-controller"
)

var (
	restConfig   *rest.Config
	kube         kubernetes.Interface
	agents       clientset.Interface
	dyn          dynamic.Interface
	sandboxImage = envOr("E2E_SANDBOX_IMAGE", "registry.k8s.io/pause:3.10")
	waitTimeout  = 3 * time.Minute
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "e2e-plugin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if pluginBinary, err = buildPlugin(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	// Runs after every scenario, so every API call the controller made for
	// them is counted.
	if err := checkNoForbiddenCalls(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: RBAC:", err)
		code = 1
	}
	return code
}

func setup() error {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		return fmt.Errorf("KUBECONFIG must name the cluster under test")
	}
	if v := os.Getenv("E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("E2E_TIMEOUT: %w", err)
		}
		waitTimeout = d
	}
	var err error
	if restConfig, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = 50, 100
	kube = kubernetes.NewForConfigOrDie(restConfig)
	agents = clientset.NewForConfigOrDie(restConfig)
	dyn = dynamic.NewForConfigOrDie(restConfig)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// The controller must be up before any scenario: its metrics answer.
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := scrapeMetrics(ctx)
		return err == nil, nil
	})
}

// newNamespace makes a namespace for one test, deleted when it ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + strings.ToLower(t.Name()) + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		// Test names can make invalid prefixes; fall back to a plain one.
		ns, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// eventually polls cond until it holds, failing the test with what after
// the wait timeout. The last error cond returned is part of the message.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", waitTimeout, what, last)
	}
}

// podTemplate is a pod spec the cluster under test can run.
func podTemplate() agentsv1beta1.PodTemplate {
	return agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "sandbox", Image: sandboxImage}},
	}}
}

func condition(conds []metav1.Condition, t agentsv1beta1.ConditionType) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == string(t) {
			return &conds[i]
		}
	}
	return nil
}

func isTrue(conds []metav1.Condition, t agentsv1beta1.ConditionType) bool {
	c := condition(conds, t)
	return c != nil && c.Status == metav1.ConditionTrue
}

// scrapeMetrics returns the controller's /metrics text.
func scrapeMetrics(ctx context.Context) (string, error) {
	if url := os.Getenv("E2E_METRICS_URL"); url != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return string(b), nil
	}
	b, err := kube.CoreV1().Services(controllerNamespace).
		ProxyGet("http", controllerService, "metrics", "/metrics", nil).DoRaw(ctx)
	return string(b), err
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text exposition format, enough for
// what the tests look at: names, label values without escaped quotes, and
// values.
func parseMetrics(text string) []sample {
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		var valueText string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.name = line[:i]
			for _, pair := range strings.Split(line[i+1:j], ",") {
				k, v, ok := strings.Cut(pair, "=")
				if ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
			valueText = strings.TrimSpace(line[j+1:])
		} else {
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			s.name, valueText = name, value
		}
		value, _, _ := strings.Cut(valueText, " ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// checkNoForbiddenCalls fails when the API server's authorizer refused any
// of the controller's requests: its RBAC misses a verb the code uses. (403s
// from namespaces being deleted or from admission are normal and counted
// under other causes.)
func checkNoForbiddenCalls() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	text, err := scrapeMetrics(ctx)
	if err != nil {
		return fmt.Errorf("reading the controller's metrics: %w", err)
	}
	seen := false
	var denied []string
	for _, s := range parseMetrics(text) {
		if s.name == "rest_client_requests_total" {
			seen = true
		}
		if s.name == "agent_sandbox_api_forbidden_requests_total" && s.labels["cause"] == "authorization" && s.value > 0 {
			denied = append(denied, fmt.Sprintf("%s %s (%v times)", s.labels["verb"], s.labels["resource"], s.value))
		}
	}
	if !seen {
		return fmt.Errorf("the controller exports no rest_client_requests_total; is it the agent-sandbox controller?")
	}
	if len(denied) > 0 {
		return fmt.Errorf("the controller's RBAC does not allow: %s", strings.Join(denied, "; "))
	}
	return nil
}
