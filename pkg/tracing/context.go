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
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the only propagator used: W3C traceparent/tracestate.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// ContextFromAnnotation returns ctx carrying the remote span context
// stored in value, the JSON map of W3C headers of the trace-context
// annotation. A missing or malformed value leaves ctx as it is: a bad
// annotation costs the link, never the reconcile.
func ContextFromAnnotation(ctx context.Context, value string) context.Context {
	if value == "" {
		return ctx
	}
	var carrier map[string]string
	if err := json.Unmarshal([]byte(value), &carrier); err != nil {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier(carrier))
}

// AnnotationValue is the trace-context annotation value for the span in
// ctx, or "" when ctx has no valid span context.
func AnnotationValue(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	b, err := json.Marshal(map[string]string(carrier))
	if err != nil {
		return ""
	}
	return string(b)
}

// Start starts a span named name from t, a child of the span in ctx. With
// t nil (tracing off) it returns ctx unchanged and a no-op span, which
// allocates nothing. Options escape to the tracer, so a call site that
// passes any allocates them even then: set attributes after the start,
// under span.IsRecording().
func Start(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		// Not the span in ctx: ending it would end the caller's.
		return ctx, noSpan
	}
	return t.Start(ctx, name, opts...)
}

// noSpan is the no-op span (the one SpanFromContext returns for a context
// without a span), held once so that Start never allocates it.
var noSpan = trace.SpanFromContext(context.Background())

// End ends span, recording *err, if any, as its error status. Taking the
// error by pointer lets a function end its span with its named result in
// one deferred call: defer tracing.End(span, &err).
func End(span trace.Span, err *error) { //nolint:gocritic // the pointer is what lets one deferred call see the final named result
	if err != nil && *err != nil && span.IsRecording() {
		span.RecordError(*err)
		span.SetStatus(codes.Error, (*err).Error())
	}
	span.End()
}

// StartObject is Start for the reconcile of one object: the span carries
// the object's <kind>.name and <kind>.namespace (kind as in "sandbox"),
// and is the child of parent, the remote context of the object's
// trace-context annotation ("" for none), or else of the span in ctx.
func StartObject(ctx context.Context, t trace.Tracer, spanName, kind, namespace, name, parent string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	ctx = ContextFromAnnotation(ctx, parent)
	ctx, span := t.Start(ctx, spanName)
	span.SetAttributes(attribute.String(kind+".name", name), attribute.String(kind+".namespace", namespace))
	return ctx, span
}
