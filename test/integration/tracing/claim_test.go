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

// Package tracing proves --enable-tracing end to end: the controllers, the
// router and the Go SDK export their spans over OTLP/HTTP to a receiver in
// the test process, and one claim's spans form one trace (claim seen,
// candidate chosen, takeover written or Sandbox created, Ready), which the
// Sandbox controller's reconciles join through the Sandbox's
// opentelemetry.io/trace-context annotation.
package tracing

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"go.opentelemetry.io/otel/trace"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(2)) }

const timeout = 3 * time.Minute

// newProvider is the binary's set-up (tracing.New from the OTEL_*
// environment) pointed at r.
func newProvider(t *testing.T, r *receiver, service string) *tracing.Provider {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	p, err := tracing.New(context.Background(), tracing.Config{ServiceName: service})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func createPool(t *testing.T, env *framework.Env, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(replicas), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.ReadyReplicas == replicas && p.Status.Replicas == replicas, nil
	})
	if err != nil {
		t.Fatalf("pool %s never had %d ready members", name, replicas)
	}
}

func createTemplate(t *testing.T, env *framework.Env) {
	t.Helper()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "python"},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}},
			},
		}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(context.Background(), tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// claimReady creates a claim on pool and returns it Ready.
func claimReady(t *testing.T, env *framework.Env, name, pool string) *extv1beta1.SandboxClaim {
	t.Helper()
	ctx := context.Background()
	claim := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: pool}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *extv1beta1.SandboxClaim
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = c
		return meta.IsStatusConditionTrue(c.Status.Conditions, "Ready"), nil
	})
	if err != nil {
		t.Fatalf("claim %s never became Ready: %+v", name, last.Status)
	}
	return last
}

// awaitSpans flushes p until match finds spans (spans are exported when
// they end, and a claim's ends at its Ready, which the test saw first or
// after).
func awaitSpans(t *testing.T, p *tracing.Provider, r *receiver, what string, match func(span) bool) []span {
	t.Helper()
	var got []span
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := p.ForceFlush(ctx); err != nil {
			return false, nil
		}
		got = r.find(match)
		return len(got) > 0, nil
	})
	if err != nil {
		t.Fatalf("no span for %s was exported; %s", what, r.dump())
	}
	return got
}

// TestClaimTrace: a warm claim and a cold one each produce one trace
// rooted in its SandboxClaim span, with the pass spans under it, the
// milestones as events, the claim's attributes, and the Sandbox
// controller's reconciles of the claim's Sandbox in the same trace. The
// cold claim is the Go SDK's, made under the caller's span: its claim
// span is the child of the SDK's create_claim span. Then the caller runs
// a command in the warm sandbox through the router: the SDK's run span,
// the router's server span and the traceparent the sandbox receives form
// one chain in the caller's trace.
func TestClaimTrace(t *testing.T) {
	r := startReceiver(t)
	p := newProvider(t, r, "agent-sandbox-controller")
	routerP := newProvider(t, r, "sandbox-router")
	sdkP := newProvider(t, r, "sandbox-client")
	env := framework.Setup(t)
	framework.StartControllersWithOptions(t, env, framework.ControllerOptions{TracerProvider: p.TracerProvider()},
		framework.ControllerSandbox, framework.ControllerSandboxTemplate, framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	routerURL, _ := framework.StartRouter(t, env, func(o *router.Options) { o.Tracer = routerP.Tracer("router") })
	client, err := sdk.NewClient(env.Config, sdk.WithRouterURL(routerURL), sdk.WithDefaultNamespace(env.Namespace),
		sdk.WithTracerProvider(sdkP.TracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	createTemplate(t, env)
	createPool(t, env, "warm", 1)
	createPool(t, env, "empty", 0)

	warm := claimReady(t, env, "warm-claim", "warm")

	// The caller's span, under which it uses the SDK.
	callerCtx, callerSpan := sdkP.Tracer("agent").Start(framework.Context(t, timeout), "agent")
	coldSandbox, err := client.Create(callerCtx, "empty", sdk.WithClaimName("cold-claim"))
	if err != nil {
		t.Fatal(err)
	}
	cold, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(callerCtx, coldSandbox.ClaimName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createClaim := awaitSpans(t, sdkP, r, "the SDK's create_claim", func(s span) bool {
		return s.Name == "sandbox-client.create_claim" && s.Attrs["sandbox.claim.name"] == "cold-claim"
	})[0]
	if createClaim.Parent != callerSpan.SpanContext().SpanID().String() || createClaim.Service != "sandbox-client" {
		t.Errorf("create_claim span %v, want the child of the caller's span %s", createClaim, callerSpan.SpanContext().SpanID())
	}

	for _, tc := range []struct {
		claim      *extv1beta1.SandboxClaim
		launchType string
		milestones []string
		parent     string // the claim span's parent: none, or the caller's span
	}{
		{warm, agentsv1beta1.LaunchTypeWarm, []string{"CandidateChosen", "TakeoverWritten"}, ""},
		{cold, agentsv1beta1.LaunchTypeCold, []string{"SandboxCreated"}, createClaim.SpanID},
	} {
		name, sandboxName := tc.claim.Name, tc.claim.Status.SandboxStatus.Name
		roots := awaitSpans(t, p, r, "claim "+name, func(s span) bool {
			return s.Name == "SandboxClaim" && s.Attrs["sandbox.claim.name"] == name
		})
		if len(roots) != 1 {
			t.Fatalf("claim %s: %d SandboxClaim spans, want 1: %v", name, len(roots), roots)
		}
		root := roots[0]
		if root.Service != "agent-sandbox-controller" {
			t.Errorf("claim %s: service.name %q, want agent-sandbox-controller", name, root.Service)
		}
		if root.Parent != tc.parent {
			t.Errorf("claim %s: SandboxClaim span's parent %q, want %q", name, root.Parent, tc.parent)
		}
		if tc.parent != "" && root.TraceID != callerSpan.SpanContext().TraceID().String() {
			t.Errorf("claim %s: trace %s, want the caller's %s", name, root.TraceID, callerSpan.SpanContext().TraceID())
		}
		want := map[string]string{"sandbox.namespace": env.Namespace, "sandbox.claim.name": name,
			"sandbox.name": sandboxName, "sandbox.launch_type": tc.launchType}
		for k, v := range want {
			if root.Attrs[k] != v {
				t.Errorf("claim %s: attribute %s = %q, want %q (all: %v)", name, k, root.Attrs[k], v, root.Attrs)
			}
		}
		if !root.hasEvent("Ready") {
			t.Errorf("claim %s: the SandboxClaim span did not end at Ready: events %v", name, root.Events)
		}

		inTrace := func(s span) bool { return s.TraceID == root.TraceID }
		passes := r.find(func(s span) bool { return inTrace(s) && s.Name == "ReconcileSandboxClaim" })
		if len(passes) == 0 {
			t.Fatalf("claim %s: no ReconcileSandboxClaim span in its trace; %s", name, r.dump())
		}
		passIDs := map[string]bool{}
		seen := map[string]bool{}
		underRoot := 0
		for _, s := range passes {
			passIDs[s.SpanID] = true
			switch {
			case s.Parent == root.SpanID:
				underRoot++
			case tc.parent != "" && s.Parent == tc.parent:
				// After Ready, a pass has no claim span to join; it
				// joins the claim's annotation, the caller's trace.
			default:
				t.Errorf("claim %s: pass span %s has parent %s, want the SandboxClaim span %s", name, s.SpanID, s.Parent, root.SpanID)
			}
			for _, e := range s.Events {
				seen[e.Name] = true
				if e.Attrs["sandbox.name"] != sandboxName {
					t.Errorf("claim %s: event %s names sandbox %q, want %q", name, e.Name, e.Attrs["sandbox.name"], sandboxName)
				}
			}
		}
		if underRoot == 0 {
			t.Errorf("claim %s: no pass span under the SandboxClaim span", name)
		}
		for _, m := range tc.milestones {
			if !seen[m] {
				t.Errorf("claim %s: no %s event on its pass spans (seen %v)", name, m, seen)
			}
		}

		// The Sandbox's reconciles joined the trace through the
		// annotation the takeover (or the create) wrote: children of the
		// pass that wrote it, with reconcilePod under them.
		reconciles := awaitSpans(t, p, r, "sandbox "+sandboxName+" in the claim's trace", func(s span) bool {
			return inTrace(s) && s.Name == "ReconcileSandbox" && s.Attrs["sandbox.name"] == sandboxName
		})
		reconcileIDs := map[string]bool{}
		for _, s := range reconciles {
			reconcileIDs[s.SpanID] = true
			if !passIDs[s.Parent] {
				t.Errorf("claim %s: ReconcileSandbox %s has parent %s, not one of the claim's pass spans", name, s.SpanID, s.Parent)
			}
			if s.Attrs["sandbox.namespace"] != env.Namespace {
				t.Errorf("ReconcileSandbox attributes %v, want sandbox.namespace %s", s.Attrs, env.Namespace)
			}
		}
		pods := awaitSpans(t, p, r, "reconcilePod of "+sandboxName, func(s span) bool {
			return inTrace(s) && s.Name == "reconcilePod" && reconcileIDs[s.Parent] && s.hasEvent("ExistingPodStatusObserved")
		})
		running := false
		for _, s := range pods {
			for _, e := range s.Events {
				running = running || (e.Attrs["pod.Phase"] == string(corev1.PodRunning) && e.Attrs["pod.Name"] != "")
			}
		}
		if !running {
			t.Errorf("claim %s: no reconcilePod span in its trace saw the Pod Running: %v", name, pods)
		}
		if pvcs := r.find(func(s span) bool { return inTrace(s) && s.Name == "reconcilePVCs" && reconcileIDs[s.Parent] }); len(pvcs) == 0 {
			t.Errorf("claim %s: no reconcilePVCs span under its Sandbox's reconciles", name)
		}
	}

	runThroughRouter(callerCtx, t, env, client, sdkP, r, warm)
	callerSpan.End()

	if n := count(r, "ReconcileSandboxWarmPool", "sandboxwarmpool.name", "warm"); n == 0 {
		t.Errorf("no ReconcileSandboxWarmPool span for pool warm; %s", r.dump())
	}
	if n := count(r, "ReconcileSandboxTemplate", "sandboxtemplate.name", "python"); n == 0 {
		t.Errorf("no ReconcileSandboxTemplate span for template python")
	}
}

// count counts the spans named name whose attribute key is value.
func count(r *receiver, name, key, value string) int {
	return len(r.find(func(s span) bool { return s.Name == name && s.Attrs[key] == value }))
}

// runThroughRouter runs a command in claim's sandbox with the SDK, under
// the caller's span in ctx, through the router, to a runtime stand-in
// bound on the Pod's (loopback, kwok's) address, and checks the chain:
// caller span -> sandbox-client.run -> HTTP POST (router) -> the
// traceparent the sandbox received.
func runThroughRouter(ctx context.Context, t *testing.T, env *framework.Env, client *sdk.Client, sdkP *tracing.Provider, r *receiver,
	claim *extv1beta1.SandboxClaim) {
	t.Helper()
	bound, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, claim.Status.SandboxStatus.Name, metav1.GetOptions{})
	if err != nil || len(bound.Status.PodIPs) == 0 {
		t.Fatalf("the claim's Sandbox: %v (status %+v)", err, bound.Status)
	}
	var (
		mu          sync.Mutex
		traceparent string
	)
	l, err := net.Listen("tcp", net.JoinHostPort(bound.Status.PodIPs[0], strconv.Itoa(sdk.DefaultServerPort)))
	if err != nil {
		t.Fatalf("binding the runtime stand-in on the Pod's address: %v", err)
	}
	runtime := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		traceparent = req.Header.Get("Traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"stdout":"hi\n","stderr":"","exit_code":0}`)
	}))
	runtime.Listener.Close()
	runtime.Listener = l
	runtime.Start()
	defer runtime.Close()

	sb, err := client.Attach(ctx, claim.Name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sb.Run(ctx, "echo hi")
	if err != nil || res.Stdout != "hi\n" {
		t.Fatalf("Run: %v %+v", err, res)
	}
	caller := trace.SpanContextFromContext(ctx)
	run := awaitSpans(t, sdkP, r, "the SDK's run span", func(s span) bool {
		return s.Name == "sandbox-client.run" && s.TraceID == caller.TraceID().String()
	})[0]
	if run.Parent != caller.SpanID().String() || run.Attrs["sandbox.claim.name"] != claim.Name ||
		run.Attrs["sandbox.command.executable"] != "echo" || run.Attrs["sandbox.exit_code"] != "0" || run.Attrs["sandbox.request_id"] == "" {
		t.Errorf("run span %v: want the caller's child with the claim, the executable, exit code 0 and a request id", run)
	}
	server := awaitSpans(t, sdkP, r, "the router's server span", func(s span) bool {
		return s.Name == "HTTP POST" && s.Parent == run.SpanID
	})[0]
	want := map[string]string{"http.method": "POST", "http.target": "/execute", "http.status_code": "200",
		"sandbox.id": claim.Status.SandboxStatus.Name, "sandbox.namespace": env.Namespace}
	for k, v := range want {
		if server.Attrs[k] != v {
			t.Errorf("router span attribute %s = %q, want %q", k, server.Attrs[k], v)
		}
	}
	if server.Service != "sandbox-router" || server.Kind != "SPAN_KIND_SERVER" || server.TraceID != caller.TraceID().String() {
		t.Errorf("router span %v (%s, %s): want a server span of sandbox-router in the caller's trace", server, server.Service, server.Kind)
	}
	mu.Lock()
	defer mu.Unlock()
	if wantTP := "00-" + server.TraceID + "-" + server.SpanID + "-01"; traceparent != wantTP {
		t.Errorf("the sandbox received traceparent %q, want the router span's %q", traceparent, wantTP)
	}
}
