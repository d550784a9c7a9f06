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
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/fakedns"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// runtimeGreeting is what the runtime answers to GET /: proof that a
// response came from the victim's own runtime and not from an attacker.
const runtimeGreeting = "Sandbox Runtime is active."

// holdWindow is how long an attack test keeps checking that routing is
// unchanged after the attack. The old cache reacted to the attacking
// object within milliseconds of its watch event; this is a safety margin
// for a loaded machine, not a performance bound.
const holdWindow = 3 * time.Second

// TestAttackForgedPodStealsRoute: someone who may create Pods in the
// victim's namespace (but not use the victim's sandbox) creates a Ready Pod
// with a controller ownerReference to the victim Sandbox's UID and the
// name-hash label, at an address they serve. The router must keep sending
// the victim's requests to the victim's own Pod.
func TestAttackForgedPodStealsRoute(t *testing.T) {
	env, routerURL, _ := attackSetup(t, nil)
	ctx := framework.Context(t, 110*time.Second)
	victim, _ := createVictim(t, ctx, env, routerURL, "victim")

	attacker := listenDecoy(t, "127.77.0.31:"+strconv.Itoa(runtimePort))
	// First a name-hash label the Sandbox controller does not index (so
	// it does not notice the Pod at all): only the router could be fooled.
	forged := forgePod(t, ctx, env.Kube, env.Namespace, "victim-forged", "127.77.0.31", victim, agentsv1beta1.NameHash("not-the-victim"))
	holdRoute(t, ctx, routerURL, env.Namespace, victim.Name, false)
	attacker.assertUntouched(t)

	// Then the victim's own name hash: the Sandbox controller now sees two
	// Pods it controls and fails closed (status.podIPs cleared), so the
	// victim may be unroutable for a while, but never routed to the
	// attacker.
	forged.Labels[agentsv1beta1.SandboxNameHashLabel] = agentsv1beta1.NameHash(victim.Name)
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).Update(ctx, forged, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	holdRoute(t, ctx, routerURL, env.Namespace, victim.Name, true)
	attacker.assertUntouched(t)

	if err := env.Kube.CoreV1().Pods(env.Namespace).Delete(ctx, forged.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ctx, routerURL, env.Namespace, victim.Name)
	attacker.assertUntouched(t)
}

// TestAttackForeignNamespaceUIDEvictsRoute: a tenant of namespace B creates
// a Ready Pod named like a Sandbox of namespace A, with its UID in a
// controller ownerReference and its name-hash label. A's route must stay,
// and the Pod must not be routable in B either.
func TestAttackForeignNamespaceUIDEvictsRoute(t *testing.T) {
	env, routerURL, _ := attackSetup(t, nil)
	ctx := framework.Context(t, 110*time.Second)
	victim, _ := createVictim(t, ctx, env, routerURL, "victim")
	nsB := otherNamespace(t, ctx, env)

	attacker := listenDecoy(t, "127.77.0.41:"+strconv.Itoa(runtimePort))
	forgePod(t, ctx, env.Kube, nsB, victim.Name, "127.77.0.41", victim, agentsv1beta1.NameHash(victim.Name))
	holdRoute(t, ctx, routerURL, env.Namespace, victim.Name, false)
	status, body := get(t, ctx, routerURL, nsB, victim.Name, nil)
	if status != http.StatusNotFound {
		t.Errorf("%s/%s: %d %s, want 404: a Pod with a foreign Sandbox's UID is not a sandbox", nsB, victim.Name, status, body)
	}
	attacker.assertUntouched(t)
}

// TestAttackClosedPortEvictsRoute: any caller may name any port. A port
// that drops SYNs (a NetworkPolicy in a real cluster; here a listener with
// a full accept queue on the victim's own Pod IP) makes the dial time out,
// the "dead host" class of error. That must not evict the sandbox: the next
// ordinary request is served as before.
func TestAttackClosedPortEvictsRoute(t *testing.T) {
	env, routerURL, rt := attackSetup(t, func(o *router.Options) {
		// Short, so the dial gives up within the request: the dial
		// timeout is the same error as a NetworkPolicy's drop after the
		// default 30 s.
		o.DialTimeout = 300 * time.Millisecond
		o.UpstreamMaxRetries = 1
		o.UpstreamRetryInitialDelay = 10 * time.Millisecond
	})
	ctx := framework.Context(t, 110*time.Second)
	victim, podIP := createVictim(t, ctx, env, routerURL, "victim")

	port := blackhole(t, podIP)
	status, body := get(t, ctx, routerURL, env.Namespace, victim.Name, map[string]string{"X-Sandbox-Port": strconv.Itoa(port)})
	if status != http.StatusBadGateway {
		t.Fatalf("request to the blackholed port %d: %d %s, want 502 (dial timeout)", port, status, body)
	}
	for range 3 {
		status, body = get(t, ctx, routerURL, env.Namespace, victim.Name, nil)
		if status != http.StatusOK || !strings.Contains(body, runtimeGreeting) {
			t.Fatalf("ordinary request after a client's dial timeout: %d %s, want the runtime's 200", status, body)
		}
	}
	if n := counter(t, rt, "sandbox_router_cache_invalidations_total"); n != 0 {
		t.Errorf("sandbox_router_cache_invalidations_total = %v, want 0: nothing in the API changed", n)
	}
}

// TestAttackDNSFallbackReachesOtherTenant: with --dns-fallback, the name
// <id>.<ns>.svc.<domain> resolves to whatever a Service of that name says,
// and a tenant creates Services (ExternalName included) in their own
// namespace. Authorized for IDs in namespace A, they must not reach
// namespace B's sandbox, nor an address no sandbox has; the fallback still
// serves a Sandbox whose status lists the address.
func TestAttackDNSFallbackReachesOtherTenant(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 60*time.Second)
	nsB := otherNamespace(t, ctx, env)
	const domain = "cluster.test"

	victimB := newDecoy(t, "127.77.0.51")
	nonSandbox := newDecoy(t, "127.77.0.52")
	good := newDecoy(t, "127.77.0.53")
	// No controllers run here: the test writes what the Sandbox controller
	// would have reported for two Service-backed sandboxes.
	statusSandbox(t, ctx, env, nsB, "victim", "127.77.0.51")
	statusSandbox(t, ctx, env, env.Namespace, "svc-sb", "127.77.0.53")

	names := map[string]netip.Addr{
		// An ExternalName Service "steal" in A pointing at B's sandbox.
		"steal." + env.Namespace + ".svc." + domain + ".": netip.MustParseAddr("127.77.0.51"),
		// A Service in A named like B's sandbox.
		"victim." + env.Namespace + ".svc." + domain + ".": netip.MustParseAddr("127.77.0.51"),
		// An ExternalName to something that is no sandbox at all.
		"ext." + env.Namespace + ".svc." + domain + ".": netip.MustParseAddr("127.77.0.52"),
		// The legitimate Service of A's own Service-backed sandbox.
		"svc-sb." + env.Namespace + ".svc." + domain + ".": netip.MustParseAddr("127.77.0.53"),
	}
	dnsAddr := fakeDNS(t, names)
	routerURL, _ := startRouterWith(t, env, func(o *router.Options) {
		o.DNSFallback = true
		o.ClusterDomain = domain
		o.UpstreamMaxRetries = 0
		o.DNSResolver = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp", dnsAddr)
			},
		}
	})

	for _, tc := range []struct {
		id string
		to *decoy
	}{
		{"steal", victimB},
		{"victim", victimB},
		{"ext", nonSandbox},
	} {
		status, body := get(t, ctx, routerURL, env.Namespace, tc.id, map[string]string{"X-Sandbox-Port": tc.to.port()})
		if status != http.StatusBadGateway {
			t.Errorf("%s/%s via DNS: %d %s, want 502", env.Namespace, tc.id, status, body)
		}
	}
	victimB.assertUntouched(t)
	nonSandbox.assertUntouched(t)

	status, body := get(t, ctx, routerURL, env.Namespace, "svc-sb", map[string]string{"X-Sandbox-Port": good.port()})
	if status != http.StatusOK || body != "decoy" || good.hits.Load() != 1 {
		t.Errorf("%s/svc-sb via DNS: %d %s (%d hits), want its own backend's 200", env.Namespace, status, body, good.hits.Load())
	}
}

// attackSetup starts the Sandbox controller for the test's namespace, the
// runtime fixture and an allow-all router.
func attackSetup(t *testing.T, mutate func(*router.Options)) (*framework.Env, string, *router.Router) {
	t.Helper()
	env := framework.Setup(t)
	runtimeBin := buildRuntime(t)
	framework.StartControllers(t, env, framework.ControllerSandbox)
	startBackends(t, env, runtimeBin, "")
	routerURL, rt := startRouterWith(t, env, mutate)
	return env, routerURL, rt
}

// createVictim creates a Sandbox and waits until the router serves it from
// its runtime; it returns the Sandbox and its Pod IP.
func createVictim(t *testing.T, ctx context.Context, env *framework.Env, routerURL, name string) (*agentsv1beta1.Sandbox, string) {
	t.Helper()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "runtime", Image: "sandbox-runtime:test"}}},
			},
		}},
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ctx, routerURL, env.Namespace, name)
	got, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || len(got.Status.PodIPs) == 0 {
		t.Fatalf("Sandbox %s: %v, podIPs %v", name, err, got.Status.PodIPs)
	}
	return sb, got.Status.PodIPs[0]
}

// forgePod creates, as an attacker would, a Pod in ns with a controller
// ownerReference to owner and the given name-hash label, never scheduled
// (the attacker's own address stands in for a Pod on a node), and marks it
// Running and Ready at ip through pods/status.
func forgePod(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name, ip string, owner *agentsv1beta1.Sandbox, hash string) *corev1.Pod {
	t.Helper()
	ownerAPIVersion := agentsv1beta1.GroupVersion.String()
	if ns != owner.Namespace {
		// The garbage collector deletes, within about a second, a Pod whose
		// owner it cannot find in the Pod's namespace, which would end the
		// attack before it is checked (and race the status write below).
		// An owner version the server does not serve leaves the GC unable
		// to resolve it, so the Pod stays; the router compares the group,
		// kind and UID only, as it must for Pods of older controllers.
		ownerAPIVersion = agentsv1beta1.GroupName + "/v1"
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{agentsv1beta1.SandboxNameHashLabel: hash, backendLabel: backendNone},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: ownerAPIVersion, Kind: agentsv1beta1.SandboxKind,
				Name: owner.Name, UID: owner.UID, Controller: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			SchedulerName: "attacker-scheduler",
			Containers:    []corev1.Container{{Name: "evil", Image: "evil:latest"}},
		},
	}
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      ip,
		PodIPs:     []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	}
	pod, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// holdRoute checks, for holdWindow, that every request for ns/name is
// answered by the victim's runtime (or, when mayMiss, by a 404).
func holdRoute(t *testing.T, ctx context.Context, routerURL, ns, name string, mayMiss bool) {
	t.Helper()
	deadline := time.Now().Add(holdWindow)
	for time.Now().Before(deadline) {
		status, body := get(t, ctx, routerURL, ns, name, nil)
		ok := status == http.StatusOK && strings.Contains(body, runtimeGreeting)
		if !ok && (!mayMiss || status != http.StatusNotFound) {
			t.Fatalf("%s/%s: %d %s, want the victim runtime's 200", ns, name, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRoute waits until the router serves ns/name from a runtime.
func waitRoute(t *testing.T, ctx context.Context, routerURL, ns, name string) {
	t.Helper()
	var status int
	var body string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		status, body = get(t, ctx, routerURL, ns, name, nil)
		return status == http.StatusOK && strings.Contains(body, runtimeGreeting), nil
	})
	if err != nil {
		t.Fatalf("the router never served %s/%s from its runtime; last %d %s", ns, name, status, body)
	}
}

// get sends GET / for ns/id through the router and returns status and body.
func get(t *testing.T, ctx context.Context, routerURL, ns, id string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, routerURL+"/", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Sandbox-ID", id)
	req.Header.Set("X-Sandbox-Namespace", ns)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s/%s: %v", ns, id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// listenDecoy is newDecoy on a fixed address (an attacker's Pod serves
// the sandbox port).
func listenDecoy(t *testing.T, addr string) *decoy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("decoy listener on %s: %v", addr, err)
	}
	d := &decoy{addr: addr}
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

// blackhole binds a port on ip whose SYNs go unanswered: a listener with
// an accept queue of one, filled by a connection nobody accepts. Linux
// drops further SYNs, as a NetworkPolicy does, so dials time out.
func blackhole(t *testing.T, ip string) int {
	t.Helper()
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() || !addr.IsLoopback() {
		t.Fatalf("blackhole: %q is not an IPv4 loopback address", ip)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: addr.As4()}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	target := net.JoinHostPort(ip, strconv.Itoa(port))
	filler, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		t.Fatalf("blackhole filler: %v", err)
	}
	t.Cleanup(func() { _ = filler.Close() })
	// Prove the hole: one more dial must time out, not be refused.
	if c, err := net.DialTimeout("tcp", target, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("blackhole on %s accepted a connection", target)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackhole on %s: %v, want a timeout", target, err)
	}
	return port
}

// otherNamespace creates a second namespace for the test.
func otherNamespace(t *testing.T, ctx context.Context, env *framework.Env) string {
	t.Helper()
	ns := env.Namespace + "-b"
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	// Pods are refused until the default ServiceAccount exists, which
	// kube-controller-manager may not have created yet.
	if _, err := env.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return ns
}

// statusSandbox creates a Sandbox and writes the status.podIPs its
// controller would report for a Pod at ip.
func statusSandbox(t *testing.T, ctx context.Context, env *framework.Env, ns, name, ip string) {
	t.Helper()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "runtime", Image: "sandbox-runtime:test"}}},
			},
		}},
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, sb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb.Status.PodIPs = []string{ip}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(ns).UpdateStatus(ctx, sb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fakeDNS answers A questions for the given fully-qualified names and
// nothing else, like a cluster DNS serving the tenants' Services.
func fakeDNS(t *testing.T, names map[string]netip.Addr) string {
	t.Helper()
	return fakedns.Serve(t, func(fqdn string) (netip.Addr, bool) {
		addr, ok := names[fqdn]
		return addr, ok
	})
}

// counter sums a counter family of the router's registry.
func counter(t *testing.T, r *router.Router, name string) float64 {
	t.Helper()
	families, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
