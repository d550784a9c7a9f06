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
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
)

// IdleSpec configures the idle scenario.
type IdleSpec struct {
	// Sandboxes opted in to idle auto-suspend (the issue asks for 1000).
	Sandboxes int
	// Window is their idle-timeout W (at least agentsv1beta1.MinIdleTimeout).
	Window time.Duration
	// Windows is how many windows are measured.
	Windows int
	// Interval is the time between two requests to one Sandbox; it must be
	// well under W, or the Sandboxes would go idle.
	Interval time.Duration
}

// Validate checks the spec against the API's bounds on W.
func (s IdleSpec) Validate() error {
	if _, err := agentsv1beta1.ParseIdleTimeout(s.Window.String()); err != nil {
		return err
	}
	if s.Sandboxes <= 0 || s.Windows <= 0 || s.Interval <= 0 || s.Interval >= s.Window/2 {
		return fmt.Errorf("idle: sandboxes and windows must be positive and the interval in (0, W/2), got %d, %d, %s", s.Sandboxes, s.Windows, s.Interval)
	}
	return nil
}

// idleRouters is how many router replicas race for each window's write.
const idleRouters = 2

// Idle measures the price of activity tracking: Sandboxes opted in with
// idle-timeout W, kept busy through two in-process routers (activity
// tracking on, as the router-wake-idle component runs them), while a watch
// counts the committed last-activity writes and the routers and the
// controller count their side. The routers run in this process on the
// real clock; the controller is the one being measured.
func (e *Env) Idle(ctx context.Context, spec IdleSpec) (*IdleResult, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	e.Progress.Scenario("idle")
	ns, err := e.namespace(ctx, "idle")
	if err != nil {
		return nil, err
	}
	defer e.deleteNamespace(context.WithoutCancel(ctx), ns)

	counter := &activityCounter{}
	f := informers.NewSharedInformerFactoryWithOptions(e.Agents, 0, informers.WithNamespace(ns))
	inf := f.Agents().V1beta1().Sandboxes()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*agentsv1beta1.Sandbox)
			n, ok2 := newObj.(*agentsv1beta1.Sandbox)
			if ok1 && ok2 && o.ResourceVersion != n.ResourceVersion {
				counter.observe(o, n)
			}
		},
	}); err != nil {
		return nil, err
	}
	stopWatch, err := startWatches(ctx, f, "the sandbox watch", inf.Informer().HasSynced)
	if err != nil {
		return nil, err
	}
	defer stopWatch()
	lister := inf.Lister().Sandboxes(ns)

	names, err := e.createIdleSandboxes(ctx, ns, spec)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if err := e.waitUntil(ctx, "the sandboxes to be Ready with pod IPs", func() (bool, string) {
		ips = ips[:0]
		sbs, _ := lister.List(labels.Everything())
		for _, sb := range sbs {
			if conditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()) && len(sb.Status.PodIPs) > 0 {
				if ip, err := netip.ParseAddr(sb.Status.PodIPs[0]); err == nil {
					ips = append(ips, ip)
				}
			}
		}
		return len(ips) == len(names), fmt.Sprintf("%d/%d", len(ips), len(names))
	}); err != nil {
		return nil, err
	}
	stopUpstreams, err := serveUpstreams(ips)
	if err != nil {
		return nil, err
	}
	defer stopUpstreams()

	rctx, stopRouters := context.WithCancel(ctx)
	defer stopRouters()
	var routers []*router.Router
	var servers []*httptest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	var urls []string
	for range idleRouters {
		r, srv, err := e.startIdleRouter(rctx)
		if err != nil {
			return nil, err
		}
		routers, servers, urls = append(routers, r), append(servers, srv), append(urls, srv.URL)
	}
	if err := e.waitUntil(ctx, "the routers to route every sandbox", func() (bool, string) {
		n := 0
		for _, r := range routers {
			for _, name := range names {
				if _, ok := r.Cache().ByName(ns, name); ok {
					n++
				}
			}
		}
		return n == len(routers)*len(names), fmt.Sprintf("%d/%d routes", n, len(routers)*len(names))
	}); err != nil {
		return nil, err
	}

	load := startIdleLoad(ctx, ns, names, urls, spec.Interval)
	defer load.stop()
	// The first request to each Sandbox writes at once; the windows are
	// measured from when every one has its first last-activity.
	if err := e.waitUntil(ctx, "every sandbox's first last-activity", func() (bool, string) {
		n := 0
		sbs, _ := lister.List(labels.Everything())
		for _, sb := range sbs {
			if _, ok := agentsv1beta1.ParseLastActivity(sb.Annotations); ok {
				n++
			}
		}
		return n == len(names), fmt.Sprintf("%d/%d", n, len(names))
	}); err != nil {
		return nil, err
	}

	attempts0, err := routerAttempts(routers)
	if err != nil {
		return nil, err
	}
	var ctrl0 map[string]float64
	if e.Ctrl != nil {
		if ctrl0, err = e.controllerQueueAdds(ctx); err != nil {
			return nil, err
		}
	}
	patches0, err := e.sandboxPatchesCommitted(ctx)
	if err != nil {
		return nil, err
	}
	req0, err0 := load.requests.Load(), load.errors.Load()
	counter.start()
	start := time.Now()
	measured := time.Duration(spec.Windows) * spec.Window
	for time.Since(start) < measured {
		w, o := counter.counts()
		e.Progress.Status("window %d/%d: %d activity writes, %d other updates, %d requests (%d errors)",
			min(spec.Windows, int(time.Since(start)/spec.Window)+1), spec.Windows, w, o, load.requests.Load()-req0, load.errors.Load()-err0)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	e.Progress.Done()
	load.stop()
	// Writes due at the end of the last window are still on the wire.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(e.Settle):
	}
	writes, other := counter.counts()
	res := &IdleResult{
		Sandboxes: len(names), WindowSeconds: spec.Window.Seconds(), Windows: spec.Windows, IntervalSeconds: spec.Interval.Seconds(),
		DurationSeconds: round3(time.Since(start).Seconds()),
		Requests:        load.requests.Load() - req0, RequestErrors: load.errors.Load() - err0,
		ActivityWrites: writes, OtherUpdates: other,
	}
	patches1, err := e.sandboxPatchesCommitted(ctx)
	if err != nil {
		return nil, err
	}
	res.ServerPatches = patches1 - patches0
	attempts1, err := routerAttempts(routers)
	if err != nil {
		return nil, err
	}
	res.Attempts = DiffCounters(attempts0, attempts1)
	if e.Ctrl != nil {
		ctrl1, err := e.controllerQueueAdds(ctx)
		if err != nil {
			return nil, err
		}
		res.QueueAdds = DiffCounters(ctrl0, ctrl1)
	}
	e.Progress.Logf("idle: %d activity writes for %d sandboxes × %d windows (%.2f per sandbox per window, %.2f/s), %.0f failed attempts, %d other updates",
		res.ActivityWrites, res.Sandboxes, res.Windows, res.WritesPerSandboxWindow(), res.WritesPerSecond(), res.FailedAttempts(), res.OtherUpdates)
	return res, nil
}

// activityCounter counts Sandbox updates once started: those that change
// only last-activity (committed activity writes) and the others.
type activityCounter struct {
	mu              sync.Mutex
	started         bool
	activity, other int
}

func (c *activityCounter) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started, c.activity, c.other = true, 0, 0
}

func (c *activityCounter) observe(oldSB, newSB *agentsv1beta1.Sandbox) {
	only := onlyActivityChanged(oldSB, newSB)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return
	}
	if only {
		c.activity++
	} else {
		c.other++
	}
}

func (c *activityCounter) counts() (activity, other int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.activity, c.other
}

// createIdleSandboxes creates the opted-in Sandboxes, a few at a time.
func (e *Env) createIdleSandboxes(ctx context.Context, ns string, spec IdleSpec) ([]string, error) {
	names := make([]string, spec.Sandboxes)
	for i := range names {
		names[i] = fmt.Sprintf("idle-%04d", i)
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = e.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, &agentsv1beta1.Sandbox{
				ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: spec.Window.String()}},
				Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
					PodTemplate: agentsv1beta1.PodTemplate{Spec: podSpec()},
				}},
			}, metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("creating sandboxes: %w", err)
	}
	return names, nil
}

// serveUpstreams serves the upstream on every pod IP at the router's
// default port. The addresses must be loopback (kwok in the local
// cluster); the bench serves nothing anywhere else.
func serveUpstreams(ips []netip.Addr) (stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			_ = s.Close() // teardown of a finished measurement
		}
	}
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			stop()
			return nil, fmt.Errorf("pod IP %s is not a loopback address: the idle scenario needs the local cluster (kwok on 127/8)", ip)
		}
		if seen[ip] {
			continue
		}
		seen[ip] = true
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(upstreamPort)))
		if err != nil {
			stop()
			return nil, fmt.Errorf("binding an upstream on the pod IP: %w", err)
		}
		s := &http.Server{Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		go func() { _ = s.Serve(l) }()
	}
	return stop, nil
}

// startIdleRouter runs one router replica in this process with activity
// tracking on, allow-all and no access log (the log is not what is
// measured), served on loopback. It writes with the bench's clients: the
// bench runs with rights to patch sandboxes.
func (e *Env) startIdleRouter(ctx context.Context) (*router.Router, *httptest.Server, error) {
	o := router.DefaultOptions()
	o.KubeClient, o.AgentsClient = e.Kube, e.Agents
	o.AllowLoopbackPodIP = true
	o.ActivityTracking = true
	o.AccessLog = false
	o.Logger = klog.Background().WithName("idle-router")
	r, err := router.New(o)
	if err != nil {
		return nil, nil, err
	}
	r.Start(ctx)
	if !r.WaitForCacheSync(ctx) {
		return nil, nil, errors.New("the router's cache never synced")
	}
	return r, httptest.NewServer(r.Handler()), nil
}

// routerAttempts sums sandbox_router_activity_writes_total by result over
// the routers.
func routerAttempts(routers []*router.Router) (map[string]float64, error) {
	out := map[string]float64{}
	for _, r := range routers {
		rec := httptest.NewRecorder()
		r.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", http.NoBody))
		samples, err := ParseMetric(rec.Body.Bytes(), "sandbox_router_activity_writes_total")
		if err != nil {
			return nil, err
		}
		for k, v := range SumBy(samples, "result") {
			out[k] += v
		}
	}
	return out, nil
}

// sandboxPatchesCommitted is the API server's count of PATCH requests on
// Sandboxes (not their status) answered 200: the activity writes (and the
// wakes, which this scenario has none of) as the server committed them,
// independent of any watch.
func (e *Env) sandboxPatchesCommitted(ctx context.Context) (float64, error) {
	raw, err := e.apiServerMetrics(ctx)
	if err != nil {
		return 0, err
	}
	samples, err := ParseMetric(raw, "apiserver_request_total")
	if err != nil {
		return 0, err
	}
	var n float64
	for _, s := range samples {
		l := s.Labels
		if l["group"] == agentsv1beta1.GroupVersion.Group && l["resource"] == "sandboxes" && l["subresource"] == "" &&
			l["verb"] == "PATCH" && l["code"] == "200" {
			n += s.Value
		}
	}
	return n, nil
}

// controllerQueueAdds reads the controller's workqueue_adds_total by queue.
func (e *Env) controllerQueueAdds(ctx context.Context) (map[string]float64, error) {
	text, err := e.Ctrl.fetch(ctx)
	if err != nil {
		return nil, err
	}
	samples, err := ParseMetric(text, "workqueue_adds_total")
	if err != nil {
		return nil, err
	}
	return SumBy(samples, "name"), nil
}

// idleLoad sends a request to each Sandbox every interval, the phases
// spread over the interval and the requests alternating between routers.
type idleLoad struct {
	requests, errors atomic.Int64
	cancel           context.CancelFunc
	wg               sync.WaitGroup
	once             sync.Once
}

func startIdleLoad(ctx context.Context, ns string, names, urls []string, interval time.Duration) *idleLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &idleLoad{cancel: cancel}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	for i, name := range names {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			h := http.Header{}
			h.Set("X-Sandbox-ID", name)
			h.Set("X-Sandbox-Namespace", ns)
			h.Set("User-Agent", "sandbox-bench")
			phase := interval * time.Duration(i) / time.Duration(len(names))
			select {
			case <-ctx.Done():
				return
			case <-time.After(phase):
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for k := i; ; k++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[k%len(urls)]+"/idle", http.NoBody)
				if err != nil {
					return
				}
				req.Header = h.Clone()
				err = getOnce(client, req)
				if ctx.Err() != nil {
					return
				}
				l.requests.Add(1)
				if err != nil {
					l.errors.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return l
}

// stop ends the load and waits for it; calling it again is harmless.
func (l *idleLoad) stop() {
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}
