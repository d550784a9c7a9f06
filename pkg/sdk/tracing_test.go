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

package sdk

import (
	"context"
	"io"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

// TestRunSpanAndPropagation: Run under the caller's span makes a
// "<service>.run" span, its child, with the spec's attributes, and the
// request carries that span's traceparent.
func TestRunSpanAndPropagation(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
		_, _ = io.WriteString(w, `{"stdout":"","stderr":"","exit_code":3}`)
	}}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL), WithTracerProvider(tp), WithTraceServiceName("agent-x"))

	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	if _, err := sb.Run(ctx, "python3 -c 'secret'"); err != nil {
		t.Fatal(err)
	}
	caller.End()
	var run sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "agent-x.run" {
			run = s
		}
	}
	if run == nil {
		t.Fatalf("no agent-x.run span: %v", spans.Ended())
	}
	if run.Parent().SpanID() != caller.SpanContext().SpanID() {
		t.Errorf("run span's parent %v, want the caller's span", run.Parent())
	}
	if got := run.InstrumentationScope().Name; got != "agent_x" {
		t.Errorf("tracer scope %q, want the service name with - made _", got)
	}
	a := attrsOf(run)
	if a[AttrClaimName] != "sandbox-claim-abcde" || a[AttrCommandExecutable] != "python3" || a[AttrExitCode] != "3" ||
		a[AttrRequestID] != rec.last().Header.Get(HeaderRequestID) {
		t.Errorf("run span attributes %v", a)
	}
	want := "00-" + run.SpanContext().TraceID().String() + "-" + run.SpanContext().SpanID().String() + "-01"
	if got := rec.last().Header.Get("Traceparent"); got != want {
		t.Errorf("request traceparent %q, want the run span's %q", got, want)
	}
}

// TestFileSpans: read, list, exists and write record their path and
// result; a failed call sets status Error.
func TestFileSpans(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path[:5] {
		case "/list":
			_, _ = io.WriteString(w, `[{"name":"a","size":1,"type":"file","mod_time":0},{"name":"b","size":1,"type":"file","mod_time":0}]`)
		case "/exis":
			_, _ = io.WriteString(w, `{"exists":true}`)
		case "/down":
			_, _ = io.WriteString(w, "12345")
		default:
			http.Error(w, "nope", http.StatusForbidden)
		}
	}}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL), WithTracerProvider(tp))
	ctx := context.Background()
	if _, err := sb.List(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Exists(ctx, "/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Read(ctx, "/f"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Write(ctx, "/w", []byte("abc")); err == nil {
		t.Fatal("write answered 403 succeeded")
	}
	want := map[string]map[attribute.Key]string{
		"sandbox-client.list":   {AttrFilePath: "/d", AttrFileCount: "2"},
		"sandbox-client.exists": {AttrFilePath: "/f", AttrFileExists: "true"},
		"sandbox-client.read":   {AttrFilePath: "/f", AttrFileSize: "5"},
		"sandbox-client.write":  {AttrFilePath: "/w", AttrFileSize: "3"},
	}
	seen := map[string]bool{}
	for _, s := range spans.Ended() {
		w, ok := want[s.Name()]
		if !ok {
			continue
		}
		seen[s.Name()] = true
		a := attrsOf(s)
		for k, v := range w {
			if a[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name(), k, a[k], v)
			}
		}
		if failed := s.Status().Code == codes.Error; failed != (s.Name() == "sandbox-client.write") {
			t.Errorf("%s: status %v", s.Name(), s.Status())
		}
	}
	if len(seen) != len(want) {
		t.Errorf("spans seen %v, want %d kinds", seen, len(want))
	}
}

// TestCreateClaimCarriesTraceContext: a claim created under a span
// carries that create_claim span's context in the trace-context
// annotation, so the controller's spans join the caller's trace; without
// a span it carries none.
func TestCreateClaimCarriesTraceContext(t *testing.T) {
	fc := newFakeCluster(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	c, err := NewClientForClientset(fc.cs, WithControlPlaneOnly(), WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	claim, err := c.CreateClaim(ctx, "pool", WithClaimName("traced"))
	if err != nil {
		t.Fatal(err)
	}
	caller.End()
	var create sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "sandbox-client.create_claim" {
			create = s
		}
	}
	if create == nil || create.Parent().SpanID() != caller.SpanContext().SpanID() {
		t.Fatalf("create_claim span %v, want the caller's child", create)
	}
	got := claim.Annotations[agentsv1beta1.TraceContextAnnotation]
	sc := trace.SpanContextFromContext(tracing.ContextFromAnnotation(context.Background(), got))
	if sc.TraceID() != create.SpanContext().TraceID() || sc.SpanID() != create.SpanContext().SpanID() {
		t.Errorf("claim annotation %q, want the create_claim span's context %v", got, create.SpanContext())
	}

	untraced, err := NewClientForClientset(fc.cs, WithControlPlaneOnly())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := untraced.CreateClaim(context.Background(), "pool", WithClaimName("plain"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := plain.Annotations[agentsv1beta1.TraceContextAnnotation]; ok {
		t.Errorf("a claim made without a span carries %q", v)
	}
}
