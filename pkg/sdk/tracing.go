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
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// DefaultTraceServiceName prefixes the SDK's span names (runtime.md §3.10).
const DefaultTraceServiceName = "sandbox-client"

// Span attribute keys of the SDK's spans (runtime.md §3.1).
const (
	AttrClaimName         = "sandbox.claim.name"
	AttrCommandExecutable = "sandbox.command.executable"
	AttrExitCode          = "sandbox.exit_code"
	AttrFilePath          = "sandbox.file.path"
	AttrFileSize          = "sandbox.file.size"
	AttrFileCount         = "sandbox.file.count"
	AttrFileExists        = "sandbox.file.exists"
	AttrRequestID         = "sandbox.request_id"
)

// WithTracerProvider makes the SDK's spans with tp; the default is the
// global provider (otel.GetTracerProvider), which records nothing until
// the program installs one.
func WithTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) { c.tracerProvider = tp }
}

// WithTraceServiceName prefixes the span names, "<name>.<operation>";
// the default is DefaultTraceServiceName.
func WithTraceServiceName(name string) ClientOption {
	return func(c *clientConfig) { c.traceServiceName = name }
}

// tracer is the Client's tracer; its scope is the service name with '-'
// made '_' (runtime.md §3.10).
func (c *clientConfig) tracer() trace.Tracer {
	tp := c.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(strings.ReplaceAll(c.serviceName(), "-", "_"))
}

func (c *clientConfig) serviceName() string {
	if c.traceServiceName == "" {
		return DefaultTraceServiceName
	}
	return c.traceServiceName
}

// startSpan starts the span of operation op, a child of the span in ctx.
// Requests sent under it carry its W3C context (setHeaders), and a claim
// created under it its trace-context annotation, so the router's and the
// controller's spans join the caller's trace.
func (c *Client) startSpan(ctx context.Context, op, claim string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, c.cfg.serviceName()+"."+op)
	if span.IsRecording() {
		if claim != "" {
			span.SetAttributes(attribute.String(AttrClaimName, claim))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endSpan ends span, with status Error when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// injectTraceContext writes the W3C headers of the span in ctx, if any.
func injectTraceContext(ctx context.Context, h propagation.HeaderCarrier) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		tracing.Propagator.Inject(ctx, h)
	}
}

// executable is the command's first word, the span's
// sandbox.command.executable (never the arguments, which may hold secrets).
func executable(cmd string) string {
	if f := strings.Fields(cmd); len(f) > 0 {
		return f[0]
	}
	return ""
}
