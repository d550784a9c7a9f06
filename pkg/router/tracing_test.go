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
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/klog/v2/textlogger"
)

// TestTracingServerSpan: with a tracer, each proxied request gets an
// "HTTP <METHOD>" server span, the child of the context the client sent,
// with the spec's attributes; the sandbox receives the server span's
// context, not the client's; the access log names the trace and span.
func TestTracingServerSpan(t *testing.T) {
	var (
		upstreamMu          sync.Mutex
		upstreamTraceparent string
	)
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		upstreamMu.Lock()
		upstreamTraceparent = r.Header.Get("Traceparent")
		upstreamMu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var buf bytes.Buffer
	var bufMu sync.Mutex
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(lockedWriter{&buf, &bufMu})))
	r, _ := newTestRouter(t, func(o *Options) {
		o.Logger = logger
		o.Tracer = tp.Tracer("test")
	}, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)

	// The caller's span, sampled, as the SDK would send it.
	_, caller := tp.Tracer("caller").Start(context.Background(), "caller")
	caller.End()
	req := sandboxRequest(t, front, http.MethodPost, "/execute?token=secret", "team-a", "sb-1", be.portNum())
	req.Header.Set("Traceparent", "00-"+caller.SpanContext().TraceID().String()+"-"+caller.SpanContext().SpanID().String()+"-01")
	resp := do(t, req)
	resp.Body.Close()
	waitFor(t, func() bool {
		bufMu.Lock()
		defer bufMu.Unlock()
		return strings.Contains(buf.String(), `"sandbox-router.access"`) && len(rec.Ended()) == 2
	})

	var server sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "HTTP POST" {
			server = s
		}
	}
	if server == nil {
		t.Fatalf("no HTTP POST span; ended: %v", rec.Ended())
	}
	if server.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kind %v, want server", server.SpanKind())
	}
	if server.Parent().SpanID() != caller.SpanContext().SpanID() || server.SpanContext().TraceID() != caller.SpanContext().TraceID() {
		t.Errorf("server span parent %v, want the caller's span %v", server.Parent(), caller.SpanContext())
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range server.Attributes() {
		attrs[kv.Key] = kv.Value.String()
	}
	for k, v := range map[attribute.Key]string{"http.method": "POST", "http.target": "/execute", "http.status_code": "200",
		"sandbox.id": "sb-1", "sandbox.namespace": "team-a"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
	upstreamMu.Lock()
	got := upstreamTraceparent
	upstreamMu.Unlock()
	want := "00-" + server.SpanContext().TraceID().String() + "-" + server.SpanContext().SpanID().String() + "-01"
	if got != want {
		t.Errorf("sandbox got traceparent %q, want the server span's %q", got, want)
	}
	bufMu.Lock()
	log := buf.String()
	bufMu.Unlock()
	for _, kv := range []string{`trace_id="` + server.SpanContext().TraceID().String() + `"`, `span_id="` + server.SpanContext().SpanID().String() + `"`} {
		if !strings.Contains(log, kv) {
			t.Errorf("access log lacks %s:\n%s", kv, log)
		}
	}
}

// TestTracingOffForwardsTheClientsContext: without a tracer the router
// records nothing and passes the client's traceparent through untouched,
// and the access log has no trace fields.
func TestTracingOffForwardsTheClientsContext(t *testing.T) {
	var (
		mu  sync.Mutex
		got string
	)
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("Traceparent")
		mu.Unlock()
	})
	var buf bytes.Buffer
	var bufMu sync.Mutex
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(lockedWriter{&buf, &bufMu})))
	r, _ := newTestRouter(t, func(o *Options) { o.Logger = logger }, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum())
	req.Header.Set("Traceparent", tp)
	resp := do(t, req)
	resp.Body.Close()
	waitFor(t, func() bool {
		bufMu.Lock()
		defer bufMu.Unlock()
		return strings.Contains(buf.String(), `"sandbox-router.access"`)
	})
	mu.Lock()
	defer mu.Unlock()
	if got != tp {
		t.Errorf("sandbox got traceparent %q, want the client's %q", got, tp)
	}
	bufMu.Lock()
	defer bufMu.Unlock()
	if strings.Contains(buf.String(), "trace_id") {
		t.Errorf("access log names a trace with tracing off:\n%s", buf.String())
	}
}
