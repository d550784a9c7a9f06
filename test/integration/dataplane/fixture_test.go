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

package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const (
	// runtimePort is where the fixture binds every sandbox's backend, the
	// port the router and the SDK default to.
	runtimePort = 8888
	// backendLabel on a Pod makes the fixture bind a redirecting server
	// instead of the runtime (value backendRedirect), or nothing at all
	// (backendNone: an attacker's Pod, whose address a test binds itself).
	backendLabel    = "backend"
	backendRedirect = "redirect"
	backendNone     = "none"
	// waitTimeout bounds every poll of the test: generous, for a loaded
	// machine.
	waitTimeout = 60 * time.Second
	// stopTimeout is how long a runtime gets after SIGTERM before SIGKILL.
	stopTimeout = 15 * time.Second
)

// buildRuntime builds cmd/sandbox-runtime into a temporary directory.
func buildRuntime(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sandbox-runtime")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sandbox-runtime")
	cmd.Dir = framework.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building sandbox-runtime: %v\n%s", err, out)
	}
	return bin
}

// backend is what serves one sandbox Pod's address: a runtime process or
// an in-process redirecting server.
type backend struct {
	podUID types.UID
	pod    string
	addr   string // <podIP>:8888

	// Runtime process.
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once cmd.Wait returned
	// Redirecting server.
	srv *http.Server

	serving atomic.Bool
}

// stop ends the backend: SIGTERM to the runtime's PID, then SIGKILL when it
// has not exited within stopTimeout, and waits for it.
func (b *backend) stop() {
	if b.srv != nil {
		_ = b.srv.Close()
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(stopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

func (b *backend) running() bool {
	if b.srv != nil {
		return true
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// backends stands in for the kubelet: it watches the namespace's sandbox
// Pods (by polling the API server) and keeps exactly one backend bound on
// the address of each Ready one.
type backends struct {
	t          *testing.T
	kube       kubernetes.Interface
	namespace  string
	runtimeBin string
	dir        string
	// redirectTo is the Location the redirecting backends answer with.
	redirectTo string

	mu      sync.Mutex
	byPod   map[types.UID]*backend
	started int
	// failures are start failures, reported (not fatal: a start is retried
	// on the next poll, e.g. when a reused IP is still bound by the
	// backend of a deleted Pod).
	failures []string
}

func startBackends(t *testing.T, env *framework.Env, runtimeBin, redirectTo string) *backends {
	t.Helper()
	f := &backends{
		t: t, kube: env.Kube, namespace: env.Namespace, runtimeBin: runtimeBin,
		dir: t.TempDir(), redirectTo: redirectTo, byPod: map[types.UID]*backend{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Polling, not sleeping for synchronisation: each tick converges
		// the running backends to the Ready Pods.
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			f.sync(ctx)
			return false, nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		f.mu.Lock()
		defer f.mu.Unlock()
		var wg sync.WaitGroup
		for uid, b := range f.byPod {
			wg.Go(b.stop)
			delete(f.byPod, uid)
		}
		wg.Wait()
		if t.Failed() && len(f.failures) > 0 {
			t.Logf("backend start failures:\n%s", strings.Join(f.failures, "\n"))
		}
	})
	return f
}

// sync starts a backend for each Ready sandbox Pod that has none and stops
// those whose Pod is gone, not Ready, terminating or moved.
func (f *backends) sync(ctx context.Context) {
	pods, err := f.kube.CoreV1().Pods(f.namespace).List(ctx, metav1.ListOptions{LabelSelector: agentsv1beta1.SandboxNameHashLabel})
	if err != nil {
		return
	}
	want := map[types.UID]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(p) && p.Labels[backendLabel] != backendNone {
			want[p.UID] = p
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Stop first, so an address a deleted Pod leaves behind is free for
	// its successor.
	for uid, b := range f.byPod {
		p, ok := want[uid]
		if !ok || net.JoinHostPort(p.Status.PodIP, fmt.Sprint(runtimePort)) != b.addr || !b.running() {
			b.stop()
			delete(f.byPod, uid)
		}
	}
	for uid, p := range want {
		if _, ok := f.byPod[uid]; ok {
			continue
		}
		b, err := f.start(p)
		if err != nil {
			f.failures = append(f.failures, fmt.Sprintf("pod %s (%s): %v", p.Name, p.Status.PodIP, err))
			continue
		}
		f.byPod[uid] = b
		f.started++
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (f *backends) start(p *corev1.Pod) (*backend, error) {
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || !ip.IsLoopback() {
		// Everything this test binds or dials stays on loopback.
		return nil, fmt.Errorf("pod IP %q is not a loopback address", p.Status.PodIP)
	}
	b := &backend{podUID: p.UID, pod: p.Name, addr: net.JoinHostPort(ip.String(), fmt.Sprint(runtimePort))}
	if p.Labels[backendLabel] == backendRedirect {
		l, err := net.Listen("tcp", b.addr)
		if err != nil {
			return nil, err
		}
		location := f.redirectTo
		b.srv = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", location)
				w.WriteHeader(http.StatusFound)
			}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() { _ = b.srv.Serve(l) }()
		b.serving.Store(true)
		return b, nil
	}

	dir, err := os.MkdirTemp(f.dir, p.Name+"-")
	if err != nil {
		return nil, err
	}
	b.logPath = filepath.Join(dir, "runtime.log")
	logs, err := os.Create(b.logPath)
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	b.cmd = exec.Command(f.runtimeBin, "--listen", b.addr, "--base-dir", filepath.Join(dir, "app"))
	b.cmd.Stdout, b.cmd.Stderr = logs, logs
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	b.exited = make(chan struct{})
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()
	go b.probe()
	return b, nil
}

// probe marks the runtime serving once GET / answers 200.
func (b *backend) probe() {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	_ = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		if !b.running() {
			return false, errors.New("exited")
		}
		resp, err := client.Get("http://" + b.addr + "/")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			b.serving.Store(true)
			return true, nil
		}
		return false, nil
	})
}

// waitServing waits until the backends of the named Pods serve.
func (f *backends) waitServing(t *testing.T, pods ...string) {
	t.Helper()
	var missing []string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		serving := map[string]bool{}
		for _, b := range f.byPod {
			serving[b.pod] = serving[b.pod] || b.serving.Load()
		}
		missing = missing[:0]
		for _, p := range pods {
			if !serving[p] {
				missing = append(missing, p)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		t.Fatalf("no backend serves Pods %v; %s", missing, f.describe())
	}
}

// describe summarises the backends and their logs, for failure messages.
func (f *backends) describe() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d backends started; failures: %v", f.started, f.failures)
	for _, be := range f.byPod {
		fmt.Fprintf(&b, "\n  %s on %s serving=%v running=%v", be.pod, be.addr, be.serving.Load(), be.running())
		if be.logPath != "" {
			if raw, err := os.ReadFile(be.logPath); err == nil {
				fmt.Fprintf(&b, "\n    log: %s", tail(string(raw), 10))
			}
		}
	}
	return b.String()
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
	return strings.Join(lines, "\n    ")
}

// decoy is a listener the router must never reach: it counts accepted
// connections and HTTP requests.
type decoy struct {
	addr  string
	conns atomic.Int64
	hits  atomic.Int64
}

func newDecoy(t *testing.T, ip string) *decoy {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("decoy listener on %s: %v", ip, err)
	}
	d := &decoy{addr: l.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			d.hits.Add(1)
			_, _ = w.Write([]byte("decoy"))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				d.conns.Add(1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

func (d *decoy) port() string {
	_, p, _ := net.SplitHostPort(d.addr)
	return p
}

func (d *decoy) assertUntouched(t *testing.T) {
	t.Helper()
	if c, h := d.conns.Load(), d.hits.Load(); c != 0 || h != 0 {
		t.Errorf("decoy %s was reached: %d connections, %d requests", d.addr, c, h)
	}
}
