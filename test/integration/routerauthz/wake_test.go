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

package routerauthz

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

var wakeOptIn = map[string]string{agentsv1beta1.WakeOnRequestAnnotation: agentsv1beta1.WakeOnRequestEnabled}

// createWakeable creates the Sandbox ns/name with annotations and serves
// its backend on every address its Pods get: a resumed Sandbox runs a new
// Pod, which kwok may give another loopback IP. The port stays the same.
func createWakeable(t *testing.T, env *framework.Env, ns, name string, annotations map[string]string) *sandbox {
	t.Helper()
	uid, ip := createReady(t, env, ns, name, annotations)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	var (
		mu      sync.Mutex
		servers = map[string]*http.Server{ip: serveHello(l, uid)}
	)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := env.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || pod.Status.PodIP == "" {
				continue
			}
			mu.Lock()
			if _, ok := servers[pod.Status.PodIP]; !ok {
				if l, err := net.Listen("tcp", net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(port))); err == nil {
					servers[pod.Status.PodIP] = serveHello(l, uid)
				} else {
					t.Errorf("serving the resumed Pod's address: %v", err)
				}
			}
			mu.Unlock()
		}
	}()
	s := &sandbox{name: name, uid: uid, port: port, stop: func() {
		cancel()
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, srv := range servers {
			_ = srv.Close()
		}
		clear(servers)
	}}
	t.Cleanup(s.stop)
	return s
}

// suspend suspends ns/name and waits until its Pod is gone and every
// router's cache has dropped it, so the next request meets a suspended
// Sandbox. It returns the resourceVersion the Sandbox had then.
func suspend(t *testing.T, env *framework.Env, ns, name string, routers ...*router.Router) string {
	t.Helper()
	ctx := context.Background()
	patch := []byte(`{"spec":{"operatingMode":"Suspended"}}`)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		if _, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		for _, r := range routers {
			if _, ok := r.Cache().ByName(ns, name); ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("sandbox %s/%s never went away after suspend", ns, name)
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sb.ResourceVersion
}

// resumeWatch counts the Suspended → Running transitions of ns/name seen
// on a watch from resourceVersion rv.
type resumeWatch struct {
	mu          sync.Mutex
	transitions int
	mode        agentsv1beta1.SandboxOperatingMode
	stop        func()
}

func watchResumes(t *testing.T, env *framework.Env, ns, name, rv string) *resumeWatch {
	t.Helper()
	w, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Watch(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: rv,
	})
	if err != nil {
		t.Fatal(err)
	}
	rw := &resumeWatch{mode: agentsv1beta1.SandboxOperatingModeSuspended}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			sb, ok := ev.Object.(*agentsv1beta1.Sandbox)
			if !ok || ev.Type == watch.Error {
				continue
			}
			rw.mu.Lock()
			if rw.mode == agentsv1beta1.SandboxOperatingModeSuspended && sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeRunning {
				rw.transitions++
			}
			rw.mode = sb.Spec.OperatingMode
			rw.mu.Unlock()
		}
	}()
	rw.stop = func() { w.Stop(); <-done }
	t.Cleanup(rw.stop)
	return rw
}

// settled waits until the watch has shown the Sandbox Running and returns
// the transitions seen.
func (rw *resumeWatch) settled(t *testing.T) int {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		rw.mu.Lock()
		defer rw.mu.Unlock()
		return rw.mode == agentsv1beta1.SandboxOperatingModeRunning, nil
	})
	if err != nil {
		t.Fatal("the watch never showed the Sandbox Running")
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.transitions
}

// wakes reads sandbox_router_wakes_total{result} from a router's registry.
func wakes(t *testing.T, r *router.Router, result string) float64 {
	t.Helper()
	return framework.RouterCounter(t, r, "sandbox_router_wakes_total", "result", result)
}

// concurrently sends n calls at once, spread over the routers, and
// returns the statuses that were not 200 with a hello body.
func concurrently(routerURLs []string, n int, ns string, sb *sandbox, token string) []string {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  []string
		gate = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-gate
			code, body, err := call(context.Background(), routerURLs[i%len(routerURLs)], ns, sb, token)
			if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "hello from ") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%d %q %v", code, body, err))
				mu.Unlock()
			}
		})
	}
	close(gate)
	wg.Wait()
	return bad
}

// startWakeRouter starts a router that lets whoever may proxy wake a
// Sandbox, with its API requests (watches aside) logged in log.
func startWakeRouter(t *testing.T, env *framework.Env, log *framework.RequestLog, mutate func(*router.Options)) (string, *router.Router) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	if log != nil {
		cfg.Wrap(log.Wrap)
	}
	agents, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return framework.StartRouter(t, env, func(o *router.Options) {
		o.AccessLog = false
		o.AgentsClient = agents
		o.WakeAuthz = router.WakeAuthzProxy
		if mutate != nil {
			mutate(o)
		}
	})
}

// patches counts the PATCH requests in reqs.
func patches(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, http.MethodPatch+" ") {
			n++
		}
	}
	return n
}

// TestWakeOneResumeFor20Requests: 20 concurrent requests for a suspended,
// opted-in Sandbox all answer 200 through one router, and then through two
// replicas (10 + 10), each time with exactly one Suspended → Running
// transition on the API server and one resume patch committed.
func TestWakeOneResumeFor20Requests(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	var logA, logB framework.RequestLog
	urlA, ra := startWakeRouter(t, env, &logA, nil)
	urlB, rb := startWakeRouter(t, env, &logB, nil)
	sb := createWakeable(t, env, env.Namespace, "sleepy", wakeOptIn)
	waitOK(t, urlA, "running sandbox", env.Namespace, sb, "")

	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"one router", []string{urlA}},
		{"two replicas", []string{urlA, urlB}},
	} {
		rv := suspend(t, env, env.Namespace, sb.name, ra, rb)
		rw := watchResumes(t, env, env.Namespace, sb.name, rv)
		resumedBefore := wakes(t, ra, "resumed") + wakes(t, rb, "resumed")
		markA, markB := logA.Mark(), logB.Mark()
		if bad := concurrently(tc.urls, 20, env.Namespace, sb, ""); len(bad) > 0 {
			t.Errorf("%s: %d of 20 requests failed: %v", tc.name, len(bad), bad)
		}
		if n := rw.settled(t); n != 1 {
			t.Errorf("%s: %d Suspended → Running transitions on the watch, want 1", tc.name, n)
		}
		rw.stop()
		if n := wakes(t, ra, "resumed") + wakes(t, rb, "resumed") - resumedBefore; n != 1 {
			t.Errorf("%s: %v requests counted as the one that resumed, want 1", tc.name, n)
		}
		// One patch per replica at most: the requests in flight on a
		// replica share its patch, and the loser of the race between
		// replicas learns it lost from a GET, not from a second patch.
		pa, pb := patches(logA.Since(markA)), patches(logB.Since(markB))
		if pa > 1 || pb > 1 || pa+pb < 1 {
			t.Errorf("%s: %d and %d resume patches from the two routers, want at most 1 each", tc.name, pa, pb)
		}
		t.Logf("%s: resume patches %d + %d", tc.name, pa, pb)
		got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(context.Background(), sb.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got.Annotations[agentsv1beta1.LastActivityAnnotation]; !ok {
			t.Errorf("%s: the wake did not record last-activity", tc.name)
		}
	}
}

// TestWakeNotOptedIn: a suspended Sandbox without the opt-in is 404, as
// before wake existed, and stays suspended.
func TestWakeNotOptedIn(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	url, r := startWakeRouter(t, env, nil, nil)
	sb := createWakeable(t, env, env.Namespace, "plain", map[string]string{agentsv1beta1.WakeOnRequestAnnotation: "True"})
	waitOK(t, url, "running sandbox", env.Namespace, sb, "")
	suspend(t, env, env.Namespace, sb.name, r)
	expect(t, url, "suspended, not opted in", env.Namespace, sb, "", http.StatusNotFound)
	got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(context.Background(), sb.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended {
		t.Errorf("operatingMode %q, want Suspended", got.Spec.OperatingMode)
	}
}

// TestWakeTimeout: a resumed Sandbox whose Pod cannot be scheduled holds
// the request only until the wake timeout: 504.
func TestWakeTimeout(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	url, r := startWakeRouter(t, env, nil, func(o *router.Options) { o.WakeTimeout = 2 * time.Second })
	sb := createWakeable(t, env, env.Namespace, "stuck", wakeOptIn)
	waitOK(t, url, "running sandbox", env.Namespace, sb, "")
	suspend(t, env, env.Namespace, sb.name, r)
	patch := []byte(`{"spec":{"podTemplate":{"spec":{"nodeSelector":{"agent-sandbox.test/nowhere":"true"}}}}}`)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Patch(context.Background(), sb.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body, err := call(context.Background(), url, env.Namespace, sb, "")
	if err != nil || code != http.StatusGatewayTimeout || !strings.Contains(body, "Timed out waiting for the sandbox to resume") {
		t.Errorf("unschedulable resume: %d %q %v, want 504", code, body, err)
	}
	if n := wakes(t, r, "failed"); n != 1 {
		t.Errorf("wakes{result=failed} = %v, want 1", n)
	}
}

// grantSandboxUpdate lets ServiceAccount ns/sa update sandboxes in ns and
// waits until the API server agrees.
func grantSandboxUpdate(t *testing.T, env *framework.Env, ns, sa string) {
	t.Helper()
	grant(t, env, ns, ns, sa, agentsv1beta1.SandboxesResource.Resource, "", router.ResumeVerb)
}

// grant lets ServiceAccount saNS/sa use verb on sandboxes[/subresource] in
// ns and waits until the API server agrees.
func grant(t *testing.T, env *framework.Env, ns, saNS, sa, resource, subresource, verb string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("wake-%s-%s-%s-%s", saNS, sa, verb, subresource)
	if subresource != "" {
		resource += "/" + subresource
	}
	if _, err := env.Kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{agentsv1beta1.GroupName}, Resources: []string{resource}, Verbs: []string{verb}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: saNS}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + saNS + ":" + sa
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		sar, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: verb, Group: agentsv1beta1.GroupName,
					Resource: agentsv1beta1.SandboxesResource.Resource, Subresource: subresource, Name: "any",
				},
			},
		}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s never got %s on %s in %s", user, verb, resource, ns)
	}
}

func sarWakeRouter(t *testing.T, env *framework.Env) (string, *router.Router) {
	t.Helper()
	client, _ := reviewClient(t, env)
	// A short TTL: the test grants update after a denial was cached.
	authz, err := router.NewSubjectAccessReviewAuthorizer(router.TokenReviewOptions{Client: client, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return framework.StartRouter(t, env, func(o *router.Options) {
		o.AccessLog = false
		o.Authorizer = authz
		o.WakeAuthz = router.WakeAuthzRBAC
	})
}

// TestWakeNeedsUpdate: under --wake-authz=rbac, the right to proxy alone
// does not resume a Sandbox (409, and it stays suspended); once the caller
// may update sandboxes, the same request resumes it.
func TestWakeNeedsUpdate(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	url, r := sarWakeRouter(t, env)
	sb := createWakeable(t, env, env.Namespace, "guarded", wakeOptIn)
	framework.GrantSandboxProxy(t, env, env.Namespace, "caller")
	token := framework.ServiceAccountToken(t, env, env.Namespace, "caller")
	waitOK(t, url, "running sandbox", env.Namespace, sb, token)
	suspend(t, env, env.Namespace, sb.name, r)

	code, body, err := call(context.Background(), url, env.Namespace, sb, token)
	if err != nil || code != http.StatusConflict || !strings.Contains(body, "resuming it needs update on sandboxes") {
		t.Errorf("proxy rights only: %d %q %v, want 409", code, body, err)
	}
	got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(context.Background(), sb.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended {
		t.Errorf("after a refused wake: operatingMode %q, want Suspended", got.Spec.OperatingMode)
	}

	grantSandboxUpdate(t, env, env.Namespace, "caller")
	waitOK(t, url, "with update granted", env.Namespace, sb, token)
}

// TestAttackWakeOtherNamespace: rights in one namespace never wake a
// Sandbox in another. A caller with proxy and update in its own namespace
// is refused before any wake (403); one that may proxy the victim's
// namespace but update only its own gets 409. The victim stays suspended.
func TestAttackWakeOtherNamespace(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	url, r := sarWakeRouter(t, env)
	victim := createWakeable(t, env, env.Namespace, "victim", wakeOptIn)
	owner := framework.ServiceAccountToken(t, env, env.Namespace, "owner")
	framework.GrantSandboxProxy(t, env, env.Namespace, "owner")
	waitOK(t, url, "owner's token", env.Namespace, victim, owner)

	attackerNS := framework.CreateNamespace(t, env, "attacker")
	framework.GrantSandboxProxy(t, env, attackerNS, "intruder")
	grantSandboxUpdate(t, env, attackerNS, "intruder")
	intruder := framework.ServiceAccountToken(t, env, attackerNS, "intruder")
	// Proxy in the victim's namespace, update only in its own.
	grant(t, env, env.Namespace, attackerNS, "peeker", agentsv1beta1.SandboxesResource.Resource, router.ProxySubresource, router.ProxyVerb)
	grantSandboxUpdate(t, env, attackerNS, "peeker")
	peeker := framework.ServiceAccountToken(t, env, attackerNS, "peeker")

	suspend(t, env, env.Namespace, victim.name, r)
	expect(t, url, "rights in another namespace", env.Namespace, victim, intruder, http.StatusForbidden)
	expect(t, url, "proxy here, update elsewhere", env.Namespace, victim, peeker, http.StatusConflict)
	got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(context.Background(), victim.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended {
		t.Errorf("operatingMode %q after the attacks, want Suspended", got.Spec.OperatingMode)
	}
	if n := wakes(t, r, "denied"); n != 1 {
		t.Errorf("wakes{result=denied} = %v, want 1 (the 403 never reaches the wake)", n)
	}
}
