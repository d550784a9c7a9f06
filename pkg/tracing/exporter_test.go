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

package tracing

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestExporterConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
		url     string
		headers map[string]string
		gzip    bool
	}{
		{name: "default", url: DefaultEndpoint},
		{name: "general endpoint gets the traces path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"}, url: "http://127.0.0.1:4318/v1/traces"},
		{name: "traces endpoint is used as is", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://127.0.0.2/x"}, url: "https://127.0.0.2/x"},
		{name: "endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, wantErr: "want an http:// or https:// URL"},
		{name: "headers", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x-tenant = t1"}, url: DefaultEndpoint,
			headers: map[string]string{"Api-Key": "a b", "X-Tenant": "t1"}},
		{name: "traces headers win", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2"}, url: DefaultEndpoint,
			headers: map[string]string{"B": "2"}},
		{name: "bad header", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, wantErr: "is not key=value"},
		{name: "gzip", env: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, url: DefaultEndpoint, gzip: true},
		{name: "bad compression", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, wantErr: "want gzip or none"},
		{name: "bad timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, wantErr: "want milliseconds"},
		{name: "missing CA file", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, wantErr: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{name: "client cert without key", env: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/x.pem"}, wantErr: "go together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			e, err := exporterConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("exporterConfig() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k := range e.headers {
				got[k] = e.headers.Get(k)
			}
			if tc.headers == nil {
				tc.headers = map[string]string{}
			}
			if e.url != tc.url || e.gzip != tc.gzip || !cmp.Equal(got, tc.headers) {
				t.Errorf("url %q gzip %v headers %v; want %q %v %v", e.url, e.gzip, got, tc.url, tc.gzip, tc.headers)
			}
		})
	}
}

// collector answers with the statuses in codes (then 200) and keeps what
// it decoded.
type collector struct {
	mu       sync.Mutex
	codes    []int
	requests []*coltracepb.ExportTraceServiceRequest
	headers  []http.Header
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.requests = append(c.requests, &req)
	c.headers = append(c.headers, r.Header.Clone())
	if len(c.codes) > 0 {
		code := c.codes[0]
		c.codes = c.codes[1:]
		w.WriteHeader(code)
	}
}

func TestExporterSendsWhatTheSDKRecorded(t *testing.T) {
	for _, compression := range []string{"none", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			clearEnv(t)
			c := &collector{codes: []int{http.StatusServiceUnavailable}}
			srv := httptest.NewServer(c)
			defer srv.Close()
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t")
			t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
			t.Setenv("OTEL_SERVICE_NAME", "svc")
			p, err := New(context.Background(), Config{ServiceName: "default"})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.Tracer("scope-a")
			ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
			_, child := tr.Start(ctx, "child", trace.WithAttributes(attribute.String("s", "v"), attribute.Int("i", 7),
				attribute.Bool("b", true), attribute.StringSlice("ss", []string{"x", "y"})))
			child.AddEvent("ev", trace.WithAttributes(attribute.Float64("f", 1.5)))
			child.SetStatus(codes.Error, "broken")
			child.End()
			parent.End()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.requests) != 2 {
				t.Fatalf("collector got %d requests, want 2 (one refused with 503, then the retry)", len(c.requests))
			}
			if got := c.headers[1].Get("Authorization"); got != "Bearer t" {
				t.Errorf("Authorization header %q, want the configured one", got)
			}
			if got := c.headers[1].Get("Content-Type"); got != "application/x-protobuf" {
				t.Errorf("Content-Type %q", got)
			}
			rs := c.requests[1].GetResourceSpans()
			if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 {
				t.Fatalf("want one resource with one scope, got %v", rs)
			}
			service := ""
			for _, kv := range rs[0].GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			if service != "svc" {
				t.Errorf("service.name %q, want svc (OTEL_SERVICE_NAME)", service)
			}
			ss := rs[0].GetScopeSpans()[0]
			if ss.GetScope().GetName() != "scope-a" || len(ss.GetSpans()) != 2 {
				t.Fatalf("scope %q with %d spans, want scope-a with 2", ss.GetScope().GetName(), len(ss.GetSpans()))
			}
			byName := map[string]*tracepb.Span{}
			for _, s := range ss.GetSpans() {
				byName[s.GetName()] = s
			}
			ps, cs := byName["parent"], byName["child"]
			if hex.EncodeToString(cs.GetParentSpanId()) != parent.SpanContext().SpanID().String() ||
				hex.EncodeToString(cs.GetTraceId()) != parent.SpanContext().TraceID().String() || len(ps.GetParentSpanId()) != 0 {
				t.Errorf("links: child parent %x trace %x; parent's parent %x", cs.GetParentSpanId(), cs.GetTraceId(), ps.GetParentSpanId())
			}
			if ps.GetKind() != tracepb.Span_SPAN_KIND_SERVER || cs.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL {
				t.Errorf("kinds %v %v", ps.GetKind(), cs.GetKind())
			}
			if cs.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || cs.GetStatus().GetMessage() != "broken" {
				t.Errorf("child status %v, want ERROR broken", cs.GetStatus())
			}
			attrs := map[string]any{}
			for _, kv := range cs.GetAttributes() {
				v := kv.GetValue()
				switch {
				case v.GetArrayValue() != nil:
					var vs []string
					for _, e := range v.GetArrayValue().GetValues() {
						vs = append(vs, e.GetStringValue())
					}
					attrs[kv.GetKey()] = vs
				case kv.GetKey() == "i":
					attrs["i"] = v.GetIntValue()
				case kv.GetKey() == "b":
					attrs["b"] = v.GetBoolValue()
				default:
					attrs[kv.GetKey()] = v.GetStringValue()
				}
			}
			want := map[string]any{"s": "v", "i": int64(7), "b": true, "ss": []string{"x", "y"}}
			if diff := cmp.Diff(want, attrs); diff != "" {
				t.Errorf("child attributes (-want +got):\n%s", diff)
			}
			if len(cs.GetEvents()) != 1 || cs.GetEvents()[0].GetName() != "ev" || cs.GetEvents()[0].GetAttributes()[0].GetValue().GetDoubleValue() != 1.5 {
				t.Errorf("child events %v", cs.GetEvents())
			}
			if cs.GetStartTimeUnixNano() == 0 || cs.GetEndTimeUnixNano() < cs.GetStartTimeUnixNano() {
				t.Errorf("child times %d..%d", cs.GetStartTimeUnixNano(), cs.GetEndTimeUnixNano())
			}
		})
	}
}

func TestExporterGivesUpOnARefusal(t *testing.T) {
	clearEnv(t)
	c := &collector{codes: []int{http.StatusBadRequest}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+"/v1/traces")
	e, err := exporterConfig()
	if err != nil {
		t.Fatal(err)
	}
	tp := newTestProvider()
	_, s := tp.Tracer("t").Start(context.Background(), "s")
	s.End()
	err = e.ExportSpans(context.Background(), tp.ended())
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("ExportSpans error = %v, want the collector's 400", err)
	}
	if len(c.requests) != 1 {
		t.Errorf("%d requests, want 1: a 400 is not retried", len(c.requests))
	}
}

type testProvider struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

func newTestProvider() testProvider {
	rec := tracetest.NewSpanRecorder()
	return testProvider{sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), rec}
}

func (p testProvider) ended() []sdktrace.ReadOnlySpan { return p.rec.Ended() }
