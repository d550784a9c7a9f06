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

package binary

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// attackWait bounds every wait for the router to act; its own bounds in
// this test are at most a second.
const attackWait = 20 * time.Second

func buildRouter(t *testing.T) string { return buildBinary(t, "sandbox-router") }

// readySandbox creates a Sandbox, waits until it is Ready and returns its
// (loopback, under kwok) Pod IP.
func readySandbox(t *testing.T, env *framework.Env, name string) string {
	t.Helper()
	ctx := framework.Context(t, time.Minute)
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		}},
	}
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	if _, err := sandboxes.Create(ctx, sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ip string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := sandboxes.Get(ctx, name, metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") || len(got.Status.PodIPs) == 0 {
			return false, nil
		}
		ip = got.Status.PodIPs[0]
		return true, nil
	})
	if err != nil {
		t.Fatal("the Sandbox never became Ready with a Pod IP")
	}
	if a, err := netip.ParseAddr(ip); err != nil || !a.IsLoopback() {
		t.Fatalf("pod IP %q is not a loopback address", ip)
	}
	return ip
}

// hostileSandbox serves ip:0 by hand, answering by path: an invalid
// status line, a megabyte of headers, a request held until release, or a
// 101 followed by silence.
func hostileSandbox(t *testing.T, ip string, held chan<- struct{}, release <-chan struct{}) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(attackWait))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				switch req.URL.Path {
				case "/status-042":
					_, _ = io.WriteString(c, "HTTP/1.1 042 Hostile\r\nContent-Length: 0\r\n\r\n")
				case "/huge-headers":
					w := bufio.NewWriter(c)
					_, _ = w.WriteString("HTTP/1.1 200 OK\r\n")
					line := "X-Junk: " + strings.Repeat("a", 1000) + "\r\n"
					for range 1024 {
						if _, err := w.WriteString(line); err != nil {
							return
						}
					}
					_, _ = w.WriteString("Content-Length: 0\r\n\r\n")
					_ = w.Flush()
				case "/hold":
					held <- struct{}{}
					<-release
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				case "/ws":
					_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
					_, _ = io.Copy(io.Discard, c) // silent until the router hangs up
				}
			})
		}
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestAttackRouterBinaryHostileSandbox runs the sandbox-router binary
// against the real API server and a hostile sandbox on the Pod's loopback
// address: an invalid status code and huge headers come back as 502
// (not a reset connection), one client's excess requests as 503 with
// Retry-After, and a silent WebSocket is closed; /metrics counts each
// with bounded labels.
func TestAttackRouterBinaryHostileSandbox(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandbox)
	bin := buildRouter(t)
	ip := readySandbox(t, env, "hostile")
	held, release := make(chan struct{}, 2), make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	port := hostileSandbox(t, ip, held, release)

	proxyAddr, metricsAddr, probeAddr := framework.FreeAddr(t), framework.FreeAddr(t), framework.FreeAddr(t)
	cmd := exec.Command(bin,
		"--kubeconfig", env.Kubeconfig,
		"--cache-namespace", env.Namespace,
		"--http-bind-address", proxyAddr,
		"--metrics-bind-address", metricsAddr,
		"--health-probe-bind-address", probeAddr,
		"--allow-loopback-pod-ip",
		"--authz-mode", "allow-all",
		"--shutdown-timeout", "5s",
		"--max-inflight-requests-per-client", "2",
		"--tunnel-idle-timeout", "500ms",
		"--write-timeout", "1s",
	)
	exited := startLogged(t, cmd, "router", 60)
	ctx := framework.Context(t, 2*time.Minute)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("the router exited: %v", err)
		default:
		}
		code, _ := framework.HTTPGet(ctx, "http://"+probeAddr+"/readyz")
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: attackWait}
	call := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+proxyAddr+path, http.NoBody)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Sandbox-ID", "hostile")
		req.Header.Set("X-Sandbox-Namespace", env.Namespace)
		req.Header.Set("X-Sandbox-Port", port)
		return client.Do(req)
	}
	expect := func(path string, want int) *http.Response {
		t.Helper()
		// The router's cache may lag the Sandbox by a moment: 404 is retried.
		var resp *http.Response
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, attackWait, true, func(context.Context) (bool, error) {
			var err error
			if resp, err = call(path); err != nil {
				return false, err
			}
			if resp.StatusCode == http.StatusNotFound {
				resp.Body.Close()
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
		return resp
	}

	expect("/status-042", http.StatusBadGateway)
	expect("/huge-headers", http.StatusBadGateway)

	// One client holds its two in-flight slots; its next request is shed.
	holders := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := call("/hold")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("held request: status %d", resp.StatusCode)
				}
			}
			holders <- err
		}()
	}
	for range 2 {
		select {
		case <-held:
		case <-time.After(attackWait):
			t.Fatal("the held requests never reached the sandbox")
		}
	}
	if resp := expect("/", http.StatusServiceUnavailable); resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	releaseAll()
	for range 2 {
		if err := <-holders; err != nil {
			t.Error(err)
		}
	}

	// A WebSocket nobody speaks on is closed by the router.
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(attackWait))
	if _, err := fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: router\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"X-Sandbox-ID: hostile\r\nX-Sandbox-Namespace: %s\r\nX-Sandbox-Port: %s\r\n\r\n", env.Namespace, port); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the idle WebSocket was not closed")
	}

	_, body := framework.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`sandbox_router_upstream_errors_total{reason="invalid_status",sandbox_namespace=%q} 1`, env.Namespace),
		fmt.Sprintf(`sandbox_router_upstream_errors_total{reason="headers_too_large",sandbox_namespace=%q} 1`, env.Namespace),
		`sandbox_router_rejections_total{limit="inflight_per_client"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(attackWait):
		t.Fatal("no exit within 20s of SIGTERM")
	}
}
