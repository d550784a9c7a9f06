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
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// startSpan starts the server span of a proxied request, "HTTP <METHOD>"
// (runtime.md §1.14), as the child of the W3C context the client sent,
// and returns the request carrying it.
func (r *Router) startSpan(req *http.Request) (*http.Request, trace.Span) {
	ctx := tracing.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	ctx, span := r.opts.Tracer.Start(ctx, "HTTP "+req.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.method", req.Method), attribute.String("http.target", req.URL.Path)))
	return req.WithContext(ctx), span
}

// endSpan records the outcome of the request on its span and ends it.
// http.target is the path only: the query string may carry tokens, as
// in the access log.
func endSpan(span trace.Span, rec *responseRecorder, st *requestState) {
	code := rec.code()
	span.SetAttributes(attribute.Int("http.status_code", code))
	if st != nil {
		span.SetAttributes(attribute.String("sandbox.id", st.target.ID), attribute.String("sandbox.namespace", st.target.Namespace))
	}
	if code >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(code))
	}
	span.End()
}
