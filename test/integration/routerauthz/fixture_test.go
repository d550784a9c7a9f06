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
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const waitTimeout = 45 * time.Second

// startRouter serves an in-process router on 127.0.0.1 with authz, loopback
// Pod IPs allowed (kwok's) and no dial retries.
func startRouter(t *testing.T, env *framework.Env, authz router.Authorizer) string {
	t.Helper()
	url, _ := framework.StartRouter(t, env, func(o *router.Options) {
		o.UpstreamMaxRetries = 0
		o.AccessLog = false
		o.Authorizer = authz
	})
	return url
}

// countingTransport counts the TokenReviews a client sends.
type countingTransport struct {
	base         http.RoundTripper
	tokenReviews atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/tokenreviews") {
		c.tokenReviews.Add(1)
	}
	return c.base.RoundTrip(req)
}

// reviewClient is the router's dedicated review client as the binary
// builds it (no client-side limiter), with its TokenReviews counted.
func reviewClient(t *testing.T, env *framework.Env) (kubernetes.Interface, *countingTransport) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	counter := &countingTransport{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.base = rt; return counter })
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, counter
}

// sandbox is one Ready Sandbox with a backend serving on its Pod's
// address, answering "hello from <uid>".
type sandbox struct {
	name string
	uid  string
	port int
	stop func()
}

// createSandbox creates the Sandbox ns/name, waits until it is Ready with
// a Pod IP, and serves a backend there until the test ends (or stop).
func createSandbox(t *testing.T, env *framework.Env, ns, name string) *sandbox {
	t.Helper()
	uid, ip := createReady(t, env, ns, name, nil)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHello(l, uid)
	s := &sandbox{name: name, uid: uid, port: l.Addr().(*net.TCPAddr).Port, stop: func() { _ = srv.Close() }}
	t.Cleanup(s.stop)
	return s
}

// createReady creates the Sandbox ns/name with annotations and waits
// until it is Ready with a loopback Pod IP, which it returns with the UID.
func createReady(t *testing.T, env *framework.Env, ns, name string, annotations map[string]string) (uid, ip string) {
	t.Helper()
	ctx := context.Background()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "agent", Image: "agent:test", Ports: []corev1.ContainerPort{{ContainerPort: 8888}}}},
			}},
		}},
	}
	created, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, sb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating sandbox %s/%s: %v", ns, name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || got.UID != created.UID {
			return false, nil
		}
		c := meta.FindStatusCondition(got.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))
		if c == nil || c.Status != metav1.ConditionTrue || len(got.Status.PodIPs) == 0 {
			return false, nil
		}
		ip = got.Status.PodIPs[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("sandbox %s/%s never became Ready with a Pod IP", ns, name)
	}
	if addr, err := netip.ParseAddr(ip); err != nil || !addr.IsLoopback() {
		// Everything this test binds or dials stays on loopback.
		t.Fatalf("pod IP %q is not a loopback address", ip)
	}
	return string(created.UID), ip
}

// serveHello answers "hello from <uid>" on l. Any free port rather than
// 8888: other test processes on this machine get the same loopback Pod
// IPs from their own clusters.
func serveHello(l net.Listener, uid string) *http.Server {
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello from "+uid) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return srv
}

// deleteSandbox deletes ns/name and waits until it and its Pod are gone.
func deleteSandbox(t *testing.T, env *framework.Env, ns string, s *sandbox) {
	t.Helper()
	ctx := context.Background()
	s.stop()
	if err := env.Agents.AgentsV1beta1().Sandboxes(ns).Delete(ctx, s.name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, s.name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("sandbox %s/%s was never deleted", ns, s.name)
	}
}

var httpClient = &http.Client{
	Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// call sends GET / for ns/sb through the router with token (none when
// empty) and returns the status and body.
func call(ctx context.Context, routerURL, ns string, sb *sandbox, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, routerURL+"/", http.NoBody)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Sandbox-ID", sb.name)
	req.Header.Set("X-Sandbox-Namespace", ns)
	req.Header.Set("X-Sandbox-Port", strconv.Itoa(sb.port))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// expect checks one call's status (and, for 200, that the sandbox answered).
func expect(t *testing.T, routerURL, what, ns string, sb *sandbox, token string, want int) {
	t.Helper()
	code, body, err := call(context.Background(), routerURL, ns, sb, token)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if code != want || (want == http.StatusOK && !strings.HasPrefix(body, "hello from ")) {
		t.Errorf("%s: status %d %q, want %d", what, code, body, want)
	}
}

// waitOK polls until a call answers 200: the router's cache learns of a
// new Sandbox a moment after the API server does.
func waitOK(t *testing.T, routerURL, what, ns string, sb *sandbox, token string) string {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		code, body, err := call(ctx, routerURL, ns, sb, token)
		last = fmt.Sprintf("%d %q %v", code, body, err)
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s: never 200, last %s", what, last)
	}
	return last
}
