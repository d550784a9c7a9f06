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

package sandbox

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// startSpan starts the ReconcileSandbox span (controllers.md §6.4) as a
// child of the trace in the Sandbox's trace-context annotation, which the
// claim controller writes with the takeover or the cold create: the
// Sandbox's reconciles then show in the claim's trace. A Sandbox without
// the annotation (a pool member not yet claimed, one created directly)
// gets a trace per reconcile; the annotation is not stamped on it, as
// that would cost a write per Sandbox.
func (c *Controller) startSpan(ctx context.Context, sb *agentsv1beta1.Sandbox) (context.Context, trace.Span) {
	ctx, span := tracing.StartObject(ctx, c.opts.Tracer, "ReconcileSandbox", "sandbox", sb.Namespace, sb.Name,
		sb.Annotations[agentsv1beta1.TraceContextAnnotation])
	if span.IsRecording() {
		if v, ok := sb.Labels[agentsv1beta1.CreatedByLabel]; ok {
			span.SetAttributes(attribute.String("sandbox.created_by", NormalizeCreatedBy(v)))
		}
	}
	return ctx, span
}

// observePod records what the pass saw of the Pod on the reconcilePod
// span: name and phase, the reference's event attributes.
func observePod(ctx context.Context, event string, pod *corev1.Pod) {
	span := trace.SpanFromContext(ctx)
	if pod == nil || !span.IsRecording() {
		return
	}
	span.AddEvent(event, trace.WithAttributes(attribute.String("pod.Name", pod.Name), attribute.String("pod.Phase", string(pod.Status.Phase))))
}
