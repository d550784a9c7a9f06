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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// The router scenario's sandbox and the port its upstream listens on (the
// router's default X-Sandbox-Port).
const (
	routerSandbox = "bench-upstream"
	upstreamPort  = 8888
)

// RouterSpec configures the router scenario.
type RouterSpec struct {
	// Kubeconfig is handed to the router process.
	Kubeconfig string
	// RouterBinary is the sandbox-router executable; SelfBinary is
	// sandbox-bench itself, run as 'minimal-proxy'.
	RouterBinary, SelfBinary string
	// RouterArgs are extra flags of the router process.
	RouterArgs []string
	Load       LoadSpec
	// Rounds: every round measures the three paths once each, in a
	// rotating order, so a noisy neighbour hits them alike.
	Rounds int
}

// ModeResult is one path's figures: medians over the rounds.
type ModeResult struct {
	ReqPerSec float64 `json:"reqPerSec"`
	P50Ms     float64 `json:"p50Ms"`
	P90Ms     float64 `json:"p90Ms"`
	P99Ms     float64 `json:"p99Ms"`
	Requests  int     `json:"requests"`
	// CPUMicrosPerRequest is the proxy process's CPU time (user+system)
	// per request; nil for the direct path, which has no proxy.
	CPUMicrosPerRequest *float64 `json:"cpuMicrosPerRequest,omitempty"`
}

// RouterRound is one round: the same load against each path.
type RouterRound struct {
	Direct  LoadResult `json:"direct"`
	Minimal LoadResult `json:"minimal"`
	Router  LoadResult `json:"router"`
	// CPU seconds of the two proxy processes during their runs.
	MinimalCPUSec float64 `json:"minimalCpuSec"`
	RouterCPUSec  float64 `json:"routerCpuSec"`
}

// RouterResult compares the router with a minimal reverse proxy in front
// of the same upstream, and with the upstream reached directly.
type RouterResult struct {
	Clients         int     `json:"clients"`
	Rounds          int     `json:"rounds"`
	DurationSeconds float64 `json:"durationSeconds"`
	// RouterArgs are the router process's flags.
	RouterArgs []string   `json:"routerArgs"`
	Direct     ModeResult `json:"direct"`
	Minimal    ModeResult `json:"minimal"`
	Router     ModeResult `json:"router"`
	// RPSRatio and P50Ratio are router/minimal, the medians of the
	// per-round ratios.
	RPSRatio float64 `json:"rpsRatio"`
	P50Ratio float64 `json:"p50Ratio"`
	// AccessLogLines counts the router's access log lines: it must have
	// logged at least every measured request.
	AccessLogLines int           `json:"accessLogLines"`
	PerRound       []RouterRound `json:"perRound"`
}

// Router measures the per-request overhead of the router: a small GET
// from Clients keep-alive clients (1) straight to an upstream server, (2)
// through a minimal httputil.ReverseProxy process, (3) through a
// sandbox-router process with its defaults (access log on), routed by the
// Pod cache to the same upstream. The upstream serves the address kwok
// gave the Pod of a real Sandbox, so the router resolves it like any
// other. Everything listens on loopback only.
func (e *Env) Router(ctx context.Context, spec RouterSpec) (*RouterResult, error) {
	e.Progress.Scenario("router")
	ns, err := e.namespace(ctx, "router")
	if err != nil {
		return nil, err
	}
	defer e.deleteNamespace(context.WithoutCancel(ctx), ns)

	ip, err := e.routerSandbox(ctx, ns)
	if err != nil {
		return nil, err
	}
	upstreamAddr := net.JoinHostPort(ip.String(), strconv.Itoa(upstreamPort))
	ul, err := net.Listen("tcp", upstreamAddr)
	if err != nil {
		return nil, fmt.Errorf("binding the upstream on the sandbox's pod IP: %w", err)
	}
	upstream := &http.Server{Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = upstream.Serve(ul) }()
	defer func() { _ = upstream.Close() }() // teardown of a finished measurement

	minimal, err := startMinimalProxy(ctx, spec.SelfBinary, "http://"+upstreamAddr)
	if err != nil {
		return nil, err
	}
	defer minimal.stop()

	logFile, err := os.CreateTemp("", "sandbox-bench-router-*.log")
	if err != nil {
		return nil, err
	}
	// The router writes the log through its own descriptor; ours only
	// names the file, and the counts have been read before the cleanup.
	defer func() {
		_ = logFile.Close()
		_ = os.Remove(logFile.Name())
	}()
	rt, routerArgs, err := e.startRouter(ctx, spec, logFile)
	if err != nil {
		return nil, err
	}
	defer rt.stop()

	h := http.Header{}
	h.Set("X-Sandbox-ID", routerSandbox)
	h.Set("X-Sandbox-Namespace", ns)
	h.Set("User-Agent", "sandbox-bench")
	routerURL := "http://" + rt.addr + "/bench"
	// The cache learns the Pod from its informer; wait for the first 200.
	if err := e.waitUntil(ctx, "the router to route to the sandbox", func() (bool, string) {
		err := getOnceURL(ctx, routerURL, h)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return nil, err
	}

	targets := []struct {
		name, url string
		proc      *process
	}{
		{"direct", "http://" + upstreamAddr + "/bench", nil},
		{"minimal proxy", "http://" + minimal.addr + "/bench", minimal},
		{"router", routerURL, rt},
	}
	clients := make([]*http.Client, len(targets))
	for i := range clients {
		clients[i] = newLoadClient(spec.Load.Clients)
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	res := &RouterResult{Clients: spec.Load.Clients, Rounds: spec.Rounds, DurationSeconds: spec.Load.Duration.Seconds(), RouterArgs: routerArgs}
	for round := range spec.Rounds {
		var rr RouterRound
		for k := range targets {
			i := (k + round) % len(targets)
			tg := targets[i]
			e.Progress.Status("round %d/%d: %s", round+1, spec.Rounds, tg.name)
			cpu0 := tg.proc.cpuSeconds()
			lr, err := runLoad(ctx, clients[i], tg.url, h, spec.Load)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, tg.name, err)
			}
			cpu := tg.proc.cpuSeconds() - cpu0
			switch i {
			case 0:
				rr.Direct = lr
			case 1:
				rr.Minimal, rr.MinimalCPUSec = lr, cpu
			case 2:
				rr.Router, rr.RouterCPUSec = lr, cpu
			}
		}
		e.Progress.Logf("round %d: req/s direct %.0f, minimal proxy %.0f, router %.0f (%.2f×); p50 ms %.3f, %.3f, %.3f (%.2f×)",
			round+1, rr.Direct.ReqPerSec, rr.Minimal.ReqPerSec, rr.Router.ReqPerSec, ratio(rr.Router.ReqPerSec, rr.Minimal.ReqPerSec),
			rr.Direct.Latency.P50Ms, rr.Minimal.Latency.P50Ms, rr.Router.Latency.P50Ms, ratio(rr.Router.Latency.P50Ms, rr.Minimal.Latency.P50Ms))
		res.PerRound = append(res.PerRound, rr)
	}
	e.Progress.Done()
	rt.stop()
	res.summarize()
	if res.AccessLogLines, err = countAccessLog(logFile.Name()); err != nil {
		return nil, err
	}
	if res.AccessLogLines < res.Router.Requests {
		return nil, fmt.Errorf("the router logged %d access lines for at least %d requests: is the access log on?", res.AccessLogLines, res.Router.Requests)
	}
	e.Progress.Logf("router/minimal proxy: req/s %.2f×, p50 %.2f× (medians of %d rounds)", res.RPSRatio, res.P50Ratio, res.Rounds)
	return res, nil
}

// summarize takes the medians over the rounds.
func (r *RouterResult) summarize() {
	var rps, p50 []float64
	pick := func(get func(*RouterRound) LoadResult, cpu func(*RouterRound) float64) ModeResult {
		var q, a, b, c []float64
		var cpuSec float64
		m := ModeResult{}
		for i := range r.PerRound {
			rr := &r.PerRound[i]
			lr := get(rr)
			q, a, b, c = append(q, lr.ReqPerSec), append(a, lr.Latency.P50Ms), append(b, lr.Latency.P90Ms), append(c, lr.Latency.P99Ms)
			m.Requests += lr.Requests
			if cpu != nil {
				cpuSec += cpu(rr)
			}
		}
		m.ReqPerSec, m.P50Ms, m.P90Ms, m.P99Ms = round3(median(q)), round3(median(a)), round3(median(b)), round3(median(c))
		if cpu != nil && m.Requests > 0 {
			v := round3(cpuSec * 1e6 / float64(m.Requests))
			m.CPUMicrosPerRequest = &v
		}
		return m
	}
	r.Direct = pick(func(rr *RouterRound) LoadResult { return rr.Direct }, nil)
	r.Minimal = pick(func(rr *RouterRound) LoadResult { return rr.Minimal }, func(rr *RouterRound) float64 { return rr.MinimalCPUSec })
	r.Router = pick(func(rr *RouterRound) LoadResult { return rr.Router }, func(rr *RouterRound) float64 { return rr.RouterCPUSec })
	for i := range r.PerRound {
		rr := &r.PerRound[i]
		rps = append(rps, ratio(rr.Router.ReqPerSec, rr.Minimal.ReqPerSec))
		p50 = append(p50, ratio(rr.Router.Latency.P50Ms, rr.Minimal.Latency.P50Ms))
	}
	r.RPSRatio, r.P50Ratio = round3(median(rps)), round3(median(p50))
}

// routerSandbox creates the scenario's Sandbox (one pause container) and
// returns the Pod IP its status reports once Ready. The scenario serves
// that address itself, so it must be loopback (the local cluster's kwok
// hands out 127.x addresses); any other address is refused.
func (e *Env) routerSandbox(ctx context.Context, ns string) (netip.Addr, error) {
	_, err := e.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: routerSandbox},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: podSpec()},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("creating sandbox: %w", err)
	}
	var ip netip.Addr
	err = e.waitUntil(ctx, "the sandbox to be Ready with a pod IP", func() (bool, string) {
		sb, err := e.Agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, routerSandbox, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := conditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String())
		if !ready || len(sb.Status.PodIPs) == 0 {
			return false, fmt.Sprintf("ready %v, pod IPs %v", ready, sb.Status.PodIPs)
		}
		ip, err = netip.ParseAddr(sb.Status.PodIPs[0])
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		return netip.Addr{}, err
	}
	if !ip.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("the sandbox's pod IP %s is not a loopback address: the router scenario needs the local cluster (kwok on 127/8)", ip)
	}
	// The Pod must be Ready too: the router routes to Ready Pods only.
	err = e.waitUntil(ctx, "the sandbox's pod to be Ready", func() (bool, string) {
		pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.Status.PodIP == ip.String() && podReady(p) && p.Status.Phase == corev1.PodRunning {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d pods, none Ready at %s", len(pods.Items), ip)
	})
	return ip, err
}

// process is a child process of the scenario.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// stop sends SIGTERM to the child's PID, then SIGKILL after 10 s, and
// waits for it; calling it again is harmless.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuSeconds is the process's user+system time from /proc (Linux); 0 for
// nil or where /proc is missing.
func (p *process) cpuSeconds() float64 {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	sec, err := readProcCPU(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	return sec
}

func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// startMinimalProxy runs 'sandbox-bench minimal-proxy' and reads the
// address it bound from its first line of output.
func startMinimalProxy(ctx context.Context, self, upstream string) (*process, error) {
	cmd := exec.Command(self, "minimal-proxy", "--listen", "127.0.0.1:0", "--upstream", upstream)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := startProcess("minimal proxy", cmd)
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening on ")
		if !ok || !found {
			p.stop()
			return nil, fmt.Errorf("the minimal proxy did not say where it listens (got %q)", l)
		}
		p.addr = addr
		return p, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	p.stop()
	return nil, errors.New("the minimal proxy did not start")
}

// startRouter runs the router binary with its defaults (allow-all
// authorization, access log on, every namespace cached) on free loopback
// ports, its log going to logFile, and waits for /readyz.
func (e *Env) startRouter(ctx context.Context, spec RouterSpec, logFile *os.File) (*process, []string, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	probe := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	args := []string{
		"--kubeconfig=" + spec.Kubeconfig,
		"--http-bind-address=" + addr,
		"--metrics-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		"--health-probe-bind-address=" + probe,
		// kwok's Pod IPs are loopback addresses.
		"--allow-loopback-pod-ip",
	}
	args = append(args, spec.RouterArgs...)
	cmd := exec.Command(spec.RouterBinary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := startProcess("router", cmd)
	if err != nil {
		return nil, nil, err
	}
	p.addr = addr
	err = e.waitUntil(ctx, "the router to be ready", func() (bool, string) {
		select {
		case <-p.done:
			return true, "exited"
		default:
		}
		err := getOnceURL(ctx, "http://"+probe+"/readyz", nil)
		return err == nil, fmt.Sprint(err)
	})
	select {
	case <-p.done:
		err = fmt.Errorf("the router exited; its log: %s", tail(logFile.Name(), 2000))
	default:
	}
	if err != nil {
		p.stop()
		return nil, nil, err
	}
	return p, args[1:], nil // the kubeconfig path says nothing about the router
}

// freePorts asks the kernel for n free loopback ports. They are free
// when returned; a process could take one before the router binds it, in
// which case the router fails to start and the scenario says so.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func getOnceURL(ctx context.Context, target string, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
	if err != nil {
		return err
	}
	if h != nil {
		req.Header = h.Clone()
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	return getOnce(c, req)
}

// countAccessLog counts the router's access log lines (logger
// sandbox-router.access).
func countAccessLog(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // read-only
	n := 0
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		if bytes.Contains(s.Bytes(), []byte("sandbox-router.access")) {
			n++
		}
	}
	return n, s.Err()
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
