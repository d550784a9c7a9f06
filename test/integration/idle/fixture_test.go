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

package idle

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	clocktesting "k8s.io/utils/clock/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const (
	// waitTimeout bounds every poll: generous, for a loaded machine.
	waitTimeout = 90 * time.Second
	grace       = sandbox.DefaultIdleSuspendGrace
	runtimePort = 8888
)

// backends serves HTTP on the address of every Ready sandbox Pod of the
// namespace: "/hold" answers once release is closed, anything else at once.
type backends struct {
	mu      sync.Mutex
	servers map[types.UID]*http.Server
	release chan struct{}
	held    chan struct{} // one value per /hold request received
}

func startBackends(t *testing.T, env *framework.Env) *backends {
	t.Helper()
	b := &backends{servers: map[types.UID]*http.Server{}, release: make(chan struct{}), held: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			b.sync(ctx, env)
			return false, nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for uid, s := range b.servers {
			_ = s.Close()
			delete(b.servers, uid)
		}
	})
	return b
}

func (b *backends) sync(ctx context.Context, env *framework.Env) {
	pods, err := env.Kube.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentsv1beta1.SandboxNameHashLabel})
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[types.UID]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		want[p.UID] = true
		if _, ok := b.servers[p.UID]; ok {
			continue
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !ip.IsLoopback() {
			continue // everything this test binds stays on loopback
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), fmt.Sprint(runtimePort)))
		if err != nil {
			continue // the address of a deleted Pod's server, freed on a later pass
		}
		srv := &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		b.servers[p.UID] = srv
	}
	for uid, s := range b.servers {
		if !want[uid] {
			_ = s.Close()
			delete(b.servers, uid)
		}
	}
}

func (b *backends) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hold" {
		b.held <- struct{}{}
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
	}
	_, _ = w.Write([]byte("ok"))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// idleEnv is one test's control plane view: the Sandbox controller (and
// whatever else the test asks for) and routers on one fake clock.
type idleEnv struct {
	t        *testing.T
	env      *framework.Env
	clock    *clocktesting.FakeClock
	ctrl     *framework.Controllers
	backends *backends
}

func setup(t *testing.T, controllers ...string) *idleEnv {
	t.Helper()
	env := framework.Setup(t)
	// Whole seconds: last-activity is written to the second.
	clk := clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	ctrl := framework.StartControllersWithOptions(t, env, framework.ControllerOptions{
		SandboxClock: clk, IdleSuspendGrace: grace,
	}, append([]string{framework.ControllerSandbox}, controllers...)...)
	b := startBackends(t, env)
	return &idleEnv{t: t, env: env, clock: clk, ctrl: ctrl, backends: b}
}

// startRouter starts a router replica with activity tracking on the
// test's clock; authz nil allows everything.
func (e *idleEnv) startRouter(authz router.Authorizer) (string, *router.Router) {
	e.t.Helper()
	return framework.StartRouter(e.t, e.env, func(o *router.Options) {
		o.ActivityTracking = true
		o.Clock = e.clock
		o.Authorizer = authz
	})
}

// createSandbox creates an opted-in Sandbox (idle-timeout w) and waits
// until every router serves it.
func (e *idleEnv) createSandbox(name, w string, routers ...*router.Router) {
	e.t.Helper()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: w}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "python:3.13"}}},
		}}},
	}
	if _, err := e.env.Agents.AgentsV1beta1().Sandboxes(e.env.Namespace).Create(context.Background(), sb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitRoutable(name, routers...)
}

func (e *idleEnv) waitRoutable(name string, routers ...*router.Router) {
	e.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		for _, r := range routers {
			if _, ok := r.Cache().ByName(e.env.Namespace, name); !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		e.t.Fatalf("sandbox %s never became routable on every router", name)
	}
}

func (e *idleEnv) get(name string) *agentsv1beta1.Sandbox {
	e.t.Helper()
	sb, err := e.env.Agents.AgentsV1beta1().Sandboxes(e.env.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return sb
}

// request sends GET path for the sandbox through the router at url and
// returns the status code.
func (e *idleEnv) request(url, name, path string, header http.Header) int {
	e.t.Helper()
	code, err := e.send(url, name, path, header)
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// requestNoFatal is request for another goroutine: an error is code 0.
func (e *idleEnv) requestNoFatal(url, name, path string) int {
	code, _ := e.send(url, name, path, nil)
	return code
}

func (e *idleEnv) send(url, name, path string, header http.Header) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url+path, http.NoBody)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Sandbox-ID", name)
	req.Header.Set("X-Sandbox-Namespace", e.env.Namespace)
	req.Header.Set("X-Sandbox-Port", fmt.Sprint(runtimePort))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (e *idleEnv) waitClaim(name, what string, cond func(*extv1beta1.SandboxClaim) bool) *extv1beta1.SandboxClaim {
	e.t.Helper()
	var last *extv1beta1.SandboxClaim
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		c, err := e.env.Agents.ExtensionsV1beta1().SandboxClaims(e.env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = c
		return cond(c), nil
	})
	if err != nil {
		e.t.Fatalf("claim %s never became %s: %+v", name, what, last)
	}
	return last
}

// waitActivity waits until the Sandbox's last-activity is at least want.
func (e *idleEnv) waitActivity(name string, want time.Time) time.Time {
	e.t.Helper()
	var got time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		a, ok := agentsv1beta1.ParseLastActivity(e.get(name).Annotations)
		got = a
		return ok && !a.Before(want), nil
	})
	if err != nil {
		e.t.Fatalf("last-activity of %s never reached %s (last seen %s)", name, want.UTC().Format(time.RFC3339), got)
	}
	return got
}

// syncNow makes the Sandbox controller sync name (a label change is an
// update it does not filter) and waits until that sync ran: what it then
// finds in the Sandbox is its verdict at the clock's current time.
func (e *idleEnv) syncNow(name string) {
	e.t.Helper()
	before := e.ctrl.Syncs(e.t, framework.ControllerSandbox).Total
	patch := fmt.Sprintf(`{"metadata":{"labels":{"poke":"%d"}}}`, e.clock.Now().Unix())
	if _, err := e.env.Agents.AgentsV1beta1().Sandboxes(e.env.Namespace).Patch(context.Background(), name,
		types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		return e.ctrl.Syncs(e.t, framework.ControllerSandbox).Total > before, nil
	})
	if err != nil {
		e.t.Fatal("the Sandbox controller never synced after the poke")
	}
}

// waitSuspended waits until the Sandbox's operatingMode is Suspended.
func (e *idleEnv) waitSuspended(name string) *agentsv1beta1.Sandbox {
	e.t.Helper()
	const mode = agentsv1beta1.SandboxOperatingModeSuspended
	var sb *agentsv1beta1.Sandbox
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		sb = e.get(name)
		return sb.Spec.OperatingMode == mode, nil
	})
	if err != nil {
		e.t.Fatalf("sandbox %s never became %s (annotations %v)", name, mode, sb.Annotations)
	}
	return sb
}

// activityWatch counts the committed changes of last-activity on one
// Sandbox, from the watch: each is one write the API server committed.
type activityWatch struct {
	mu     sync.Mutex
	values []string
	stop   func()
}

func (e *idleEnv) watchActivity(name string) *activityWatch {
	e.t.Helper()
	w, err := e.env.Agents.AgentsV1beta1().Sandboxes(e.env.Namespace).Watch(context.Background(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + name, ResourceVersion: e.get(name).ResourceVersion,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	aw := &activityWatch{stop: w.Stop}
	last := e.get(name).Annotations[agentsv1beta1.LastActivityAnnotation]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			sb, ok := ev.Object.(*agentsv1beta1.Sandbox)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			if v := sb.Annotations[agentsv1beta1.LastActivityAnnotation]; v != last {
				last = v
				aw.mu.Lock()
				aw.values = append(aw.values, v)
				aw.mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(func() { w.Stop(); <-done })
	return aw
}

func (aw *activityWatch) writes() []string {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	return append([]string(nil), aw.values...)
}

// activityWrites reads sandbox_router_activity_writes_total{result} of r.
func activityWrites(t *testing.T, r *router.Router, result string) float64 {
	t.Helper()
	return framework.RouterCounter(t, r, "sandbox_router_activity_writes_total", "result", result)
}
