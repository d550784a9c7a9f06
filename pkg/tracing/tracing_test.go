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
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// clearEnv unsets every variable readSettings looks at, so that the
// environment of whoever runs the test does not decide it.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
		"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"} {
		t.Setenv(k, "")
	}
}

func TestReadSettings(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string // substring; "" means success
		sampler string // Description of the sampler; "" means the SDK default
	}{
		{name: "nothing set"},
		{name: "http protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "grpc refused", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\": this build exports OTLP over http/protobuf only"},
		{name: "json refused", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"http/json\""},
		{name: "traces protocol wins over general", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "general grpc under traces grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, wantErr: "TRACES_PROTOCOL"},
		{name: "other exporter refused", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER=\"zipkin\""},
		{name: "otlp exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "always_off", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sampler: "AlwaysOffSampler"},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, sampler: "TraceIDRatioBased{0.25}"},
		{name: "parent ratio default arg", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}, sampler: "ParentBased{root:TraceIDRatioBased{1}"},
		{name: "ratio out of range", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, wantErr: "between 0 and 1"},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, wantErr: "OTEL_TRACES_SAMPLER=\"sometimes\" is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := readSettings()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readSettings() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readSettings() error = %v", err)
			}
			got := ""
			if s.sampler != nil {
				got = s.sampler.Description()
			}
			if !strings.HasPrefix(got, tc.sampler) || (tc.sampler == "") != (got == "") {
				t.Errorf("sampler = %q, want %q", got, tc.sampler)
			}
		})
	}
}

func TestNewRefusesWhatItCannotExport(t *testing.T) {
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if p, err := New(context.Background(), Config{ServiceName: "x"}); err == nil {
		_ = p.Shutdown(context.Background())
		t.Fatal("New with OTEL_EXPORTER_OTLP_PROTOCOL=grpc succeeded; want an error rather than spans silently dropped")
	}
}

func TestNewServiceName(t *testing.T) {
	for _, tc := range []struct{ env, want string }{{"", "agent-sandbox-controller"}, {"mine", "mine"}} {
		clearEnv(t)
		t.Setenv("OTEL_SERVICE_NAME", tc.env)
		// Nothing listens there; spans are never sent since none is started.
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
		p, err := New(context.Background(), Config{ServiceName: "agent-sandbox-controller"})
		if err != nil {
			t.Fatal(err)
		}
		rec := tracetest.NewSpanRecorder()
		p.sdk.RegisterSpanProcessor(rec)
		_, span := p.Tracer("t").Start(context.Background(), "s")
		span.End()
		if err := p.Shutdown(context.Background()); err != nil {
			t.Logf("shutdown: %v (no collector; expected)", err)
		}
		ended := rec.Ended()
		if len(ended) != 1 {
			t.Fatalf("recorded %d spans, want 1", len(ended))
		}
		got := ""
		for _, kv := range ended[0].Resource().Attributes() {
			if kv.Key == "service.name" {
				got = kv.Value.AsString()
			}
		}
		if got != tc.want {
			t.Errorf("OTEL_SERVICE_NAME=%q: service.name = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestAnnotationRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "parent")
	defer span.End()
	value := AnnotationValue(ctx)
	if !strings.Contains(value, `"traceparent":"00-`+span.SpanContext().TraceID().String()) {
		t.Fatalf("AnnotationValue = %s, want the span's traceparent", value)
	}
	got := trace.SpanContextFromContext(ContextFromAnnotation(context.Background(), value))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("extracted %v, want the remote context of %v", got, span.SpanContext())
	}
	for _, bad := range []string{"", "{", `{"traceparent":"garbage"}`} {
		if sc := trace.SpanContextFromContext(ContextFromAnnotation(context.Background(), bad)); sc.IsValid() {
			t.Errorf("ContextFromAnnotation(%q) = %v, want no span context", bad, sc)
		}
	}
	if v := AnnotationValue(context.Background()); v != "" {
		t.Errorf("AnnotationValue without a span = %q, want empty", v)
	}
}

// TestStartOffAllocatesNothing is the cost of tracing when it is off: a
// nil tracer starts, annotates and ends a span without allocating.
func TestStartOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, nil, "ReconcileSandbox")
		if span.IsRecording() {
			t.Fatal("a nil tracer made a recording span")
		}
		span.End()
		_ = c
	})
	if allocs != 0 {
		t.Errorf("Start with tracing off allocates %v times per call, want 0", allocs)
	}
	// And does not hand out the caller's span: ending it must not end
	// the parent.
	tp := sdktrace.NewTracerProvider()
	parentCtx, parent := tp.Tracer("t").Start(ctx, "parent")
	_, child := Start(parentCtx, nil, "child")
	child.End()
	if !parent.IsRecording() {
		t.Error("ending the span of a nil tracer ended the parent span")
	}
	parent.End()
}
