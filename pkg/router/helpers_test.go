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

package router

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	agentsfake "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

type podOpt func(*corev1.Pod)

func warm(p *corev1.Pod) { p.Labels[agentsv1beta1.WarmPoolSandboxLabel] = "abcd1234" }

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }

func ownedBy(apiVersion, kind, name string, uid types.UID) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: new(true)}}
	}
}

// sandboxPod is a Ready Pod owned by the Sandbox namespace/name with
// sandbox UID "sb-<name>" and Pod UID "pod-<name>".
func sandboxPod(ns, name, ip string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			UID:       types.UID("pod-" + ns + "-" + name),
			Labels:    map[string]string{agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash(name)},
		},
		Status: corev1.PodStatus{
			PodIP:      ip,
			PodIPs:     []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	ownedBy("agents.x-k8s.io/v1beta1", "Sandbox", name, sandboxUID(ns, name))(p)
	for _, o := range opts {
		o(p)
	}
	return p
}

func sandboxUID(ns, name string) types.UID { return types.UID("sb-" + ns + "-" + name) }

// sandboxFor is the Sandbox a working controller reports for pod: the
// owner's name and UID, the Pod's IPs in status, the pod-name annotation
// when the names differ, and the pool label when the Pod has it.
func sandboxFor(pod *corev1.Pod) *agentsv1beta1.Sandbox {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil
	}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: pod.Namespace, UID: ref.UID}}
	for _, ip := range pod.Status.PodIPs {
		sb.Status.PodIPs = append(sb.Status.PodIPs, ip.IP)
	}
	if pod.Name != ref.Name {
		sb.Annotations = map[string]string{agentsv1beta1.PodNameAnnotation: pod.Name}
	}
	if v, ok := pod.Labels[agentsv1beta1.WarmPoolSandboxLabel]; ok {
		sb.Labels = map[string]string{agentsv1beta1.WarmPoolSandboxLabel: v}
	}
	return sb
}

// newTestRouter builds a router on fake clientsets seeded with pods and,
// for each, the Sandbox its controller would report (sandboxFor), then
// starts and syncs its cache. Loopback Pod-IP hints are allowed, since
// every test backend listens on 127.0.0.0/8.
func newTestRouter(t testing.TB, mutate func(*Options), pods ...*corev1.Pod) (*Router, *k8sfake.Clientset) {
	t.Helper()
	objs := make([]runtime.Object, 0, 2*len(pods))
	for _, p := range pods {
		objs = append(objs, p)
		if sb := sandboxFor(p); sb != nil {
			objs = append(objs, sb)
		}
	}
	r, client, _ := newTestRouterObjs(t, mutate, objs...)
	return r, client
}

// newAgentsClient is a fake agent-sandbox clientset holding sandboxes. They
// are created through the client: the fake's constructor files objects
// under a guessed resource ("sandboxs") that List never reads.
func newAgentsClient(t testing.TB, sandboxes ...runtime.Object) *agentsfake.Clientset {
	t.Helper()
	c := agentsfake.NewSimpleClientset()
	for _, o := range sandboxes {
		sb := o.(*agentsv1beta1.Sandbox)
		if _, err := c.AgentsV1beta1().Sandboxes(sb.Namespace).Create(context.Background(), sb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.ClearActions()
	return c
}

// newTestRouterObjs is newTestRouter with exactly the given Pods and
// Sandboxes, nothing derived.
func newTestRouterObjs(t testing.TB, mutate func(*Options), objs ...runtime.Object) (*Router, *k8sfake.Clientset, *agentsfake.Clientset) {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	var kubeObjs, agentObjs []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*agentsv1beta1.Sandbox); ok {
			agentObjs = append(agentObjs, o)
		} else {
			kubeObjs = append(kubeObjs, o)
		}
	}
	client := k8sfake.NewClientset(kubeObjs...)
	agents := newAgentsClient(t, agentObjs...)
	o := DefaultOptions()
	o.KubeClient = client
	o.AgentsClient = agents
	o.AllowLoopbackPodIP = true
	o.Logger = logger
	o.UpstreamRetryInitialDelay = 10 * time.Millisecond
	o.UpstreamRetryMaxDelay = 40 * time.Millisecond
	if mutate != nil {
		mutate(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	r.Start(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
	defer syncCancel()
	if !r.WaitForCacheSync(syncCtx) {
		t.Fatal("cache did not sync")
	}
	t.Cleanup(r.CloseIdleConnections)
	return r, client, agents
}

// frontend serves the router's handler on loopback for the test's life.
func frontend(t *testing.T, r *Router) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(r.Handler())
	t.Cleanup(s.Close)
	return s
}

// backend is an httptest server on the given loopback IP that counts its
// hits.
type backend struct {
	*httptest.Server
	hits atomic.Int64
	ip   string
	port string
}

func newBackend(t testing.TB, ip string, h http.HandlerFunc) *backend {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	b := &backend{ip: ip}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	b.Listener.Close()
	b.Listener = l
	b.Start()
	t.Cleanup(b.Close)
	_, b.port, _ = net.SplitHostPort(l.Addr().String())
	return b
}

func (b *backend) portNum() int {
	n, _ := strconv.Atoi(b.port)
	return n
}

// sandboxRequest builds a request through front to the sandbox id in ns.
func sandboxRequest(t *testing.T, front *httptest.Server, method, path, ns, id string, port int) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, front.URL+path, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Sandbox-ID", id)
	if ns != "" {
		req.Header.Set("X-Sandbox-Namespace", ns)
	}
	if port != 0 {
		req.Header.Set("X-Sandbox-Port", strconv.Itoa(port))
	}
	return req
}

// noRedirectClient never follows redirects and never uses a proxy.
func noRedirectClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 20 * time.Second,
	}
}
