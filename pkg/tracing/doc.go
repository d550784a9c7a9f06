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

// Package tracing sets up OpenTelemetry tracing for the controller, the
// router and the SDK: an OTLP exporter configured by the standard OTEL_*
// environment variables, the W3C trace-context propagator, and the JSON
// form of that context stored in the opentelemetry.io/trace-context
// annotation (agentsv1beta1.TraceContextAnnotation).
//
// Tracing is off unless a binary asks for it (--enable-tracing). Code on
// hot paths holds a trace.Tracer that is nil when tracing is off and
// starts spans only when it is not, so that a reconcile or a proxied
// request pays nothing for tracing it does not use.
package tracing
