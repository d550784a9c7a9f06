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

// Package binary runs the agent-sandbox-controller binary itself against
// the real API server: flags, leader election, metrics and probes, and a
// graceful shutdown that releases the lease. It also runs the
// sandbox-router binary against a hostile sandbox (router_test.go).
package binary

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }

const leaseName = "a3317529.agent-sandbox.x-k8s.io"

func buildController(t *testing.T) string { return buildBinary(t, "agent-sandbox-controller") }

// buildBinary compiles ./cmd/<name> into the test's temp dir, with a
// version stamp so --version and build_info have something to show.
func buildBinary(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/agentsandbox/agent-sandbox/pkg/version.gitVersion=v0.0.0-test",
		"./cmd/"+name)
	cmd.Dir = framework.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

// startLogged starts cmd with its output in a file of the test's temp dir
// and returns a channel that receives Wait's result. The process is killed
// when the test ends; if the test failed, the last lines of its log are
// shown.
func startLogged(t *testing.T, cmd *exec.Cmd, what string, lines int) <-chan error {
	t.Helper()
	logs, err := os.Create(filepath.Join(t.TempDir(), what+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("%s log:\n%s", what, tail(string(b), lines))
		}
	})
	return exited
}

func TestVersionFlag(t *testing.T) {
	bin := buildController(t)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "agent-sandbox-controller, version v0.0.0-test (revision: unknown)") ||
		!strings.HasPrefix(lines[4], "  platform:") {
		t.Errorf("--version printed:\n%s", out)
	}
}

func TestControllerBinary(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 2*time.Minute)
	bin := buildController(t)
	metricsAddr, probeAddr, webhookAddr := framework.FreeAddr(t), framework.FreeAddr(t), framework.FreeAddr(t)
	_, webhookPort, _ := net.SplitHostPort(webhookAddr)

	cmd := exec.Command(bin,
		"--kubeconfig", env.Kubeconfig,
		"--leader-election-namespace", env.Namespace,
		"--metrics-bind-address", metricsAddr,
		"--health-probe-bind-address", probeAddr,
		"--kube-api-qps", "50", "--kube-api-burst", "100",
		"--sandbox-concurrent-workers", "4",
		// Everything below runs over three API connections and a watch
		// connection of its own.
		"--api-connections", "3", "--separate-watch-connection",
		"--extensions",
		// The conversion webhook, reached by URL: there is no Service
		// routing to a process on this machine.
		"--webhook-port", webhookPort,
		"--webhook-namespace", env.Namespace,
		"--webhook-url", "https://"+webhookAddr+"/convert",
	)
	exited := startLogged(t, cmd, "controller", 40)

	// It takes the lease and reconciles.
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "via-binary"},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		}},
	}
	if _, err := sandboxes.Create(ctx, sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := sandboxes.Get(ctx, "via-binary", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(got.Status.Conditions, "Ready"), nil
	})
	if err != nil {
		t.Fatal("the Sandbox never became Ready under the binary")
	}
	lease, err := env.Kube.CoordinationV1().Leases(env.Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("leader election lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Error("lease has no holder while the controller runs")
	}

	// v1alpha1 works through the binary's webhook, with the certificate it
	// made, kept in its Secret, and the CA it injected.
	if _, err := env.Kube.CoreV1().Secrets(env.Namespace).Get(ctx, "agent-sandbox-webhook-certs", metav1.GetOptions{}); err != nil {
		t.Errorf("webhook certificate secret: %v", err)
	}
	alpha := env.Dynamic.Resource(schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1alpha1", Resource: "sandboxes"}).Namespace(env.Namespace)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := alpha.Get(ctx, "via-binary", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		r, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		return found && r == 1, nil
	})
	if err != nil {
		t.Error("the Sandbox was never readable as v1alpha1 through the binary's conversion webhook")
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok"} {
		if code, body := framework.HTTPGet(ctx, "http://"+probeAddr+path); code != http.StatusOK || body != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, code, body, want)
		}
	}
	code, body := framework.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`agent_sandbox_build_info{build_date="unknown",compiler="gc",git_commit="unknown",git_version="v0.0.0-test"`,
		fmt.Sprintf(`agent_sandboxes{created_by="unknown",expired="false",launch_type="cold",namespace=%q,owned_by="None",ready_condition="true",sandbox_template="unknown"} 1`, env.Namespace),
		`controller_runtime_reconcile_total{controller="sandbox",result="success"}`,
		`workqueue_adds_total{name="sandbox"}`,
		`workqueue_depth{name="sandbox"}`,
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := framework.HTTPGet(ctx, "http://"+metricsAddr+"/debug/pprof/"); code == http.StatusOK {
		t.Error("pprof is served without --enable-pprof")
	}

	// SIGTERM: a clean exit that hands the lease over at once.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	lease, err = env.Kube.CoordinationV1().Leases(env.Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
		t.Errorf("lease still held by %q after shutdown; want it released", *lease.Spec.HolderIdentity)
	}
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestPprofAndCompatibilityFlags: --enable-pprof serves only the CPU
// profile, --enable-pprof-debug every profile; reference flags this build
// does not implement are accepted, so a reference Deployment starts.
func TestPprofAndCompatibilityFlags(t *testing.T) {
	env := framework.Setup(t)
	bin := buildController(t)
	for _, tc := range []struct {
		flag      string
		heapCode  int
		extraArgs []string
	}{
		{"--enable-pprof", http.StatusNotFound, []string{"--zap-devel", "--zap-log-level=info", "--disable-claim-observability-annotations"}},
		{"--enable-pprof-debug", http.StatusOK, nil},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			ctx := framework.Context(t, time.Minute)
			metricsAddr := framework.FreeAddr(t)
			args := append([]string{"--kubeconfig", env.Kubeconfig, "--leader-elect=false", "--enable-webhook=false",
				"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", framework.FreeAddr(t), tc.flag}, tc.extraArgs...)
			cmd := exec.Command(bin, args...)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				var exitErr error
				select {
				case exitErr = <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					exitErr = <-exited
				}
				if t.Failed() {
					t.Logf("controller (stopped: %v) output:\n%s", exitErr, tail(out.String(), 3000))
				}
			})
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				select {
				case err := <-exited:
					return false, fmt.Errorf("the controller exited: %v", err)
				default:
				}
				code, _ := framework.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
				return code == http.StatusOK, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := framework.HTTPGet(ctx, "http://"+metricsAddr+"/debug/pprof/profile?seconds=1"); code != http.StatusOK {
				t.Errorf("%s: CPU profile answered %d", tc.flag, code)
			}
			if code, _ := framework.HTTPGet(ctx, "http://"+metricsAddr+"/debug/pprof/heap"); code != tc.heapCode {
				t.Errorf("%s: heap profile answered %d, want %d", tc.flag, code, tc.heapCode)
			}
		})
	}
}
