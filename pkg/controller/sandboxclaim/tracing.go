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

package sandboxclaim

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/tracing"
)

// Span names and attribute keys of a claim's trace (docs/guides/tracing.md).
const (
	spanClaim     = "SandboxClaim"
	spanReconcile = "ReconcileSandboxClaim"

	eventCandidateChosen = "CandidateChosen"
	eventTakeoverWritten = "TakeoverWritten"
	eventSandboxCreated  = "SandboxCreated"
	eventReady           = "Ready"
	eventDeleted         = "ClaimDeleted"

	attrNamespace  = "sandbox.namespace"
	attrClaim      = "sandbox.claim.name"
	attrSandbox    = "sandbox.name"
	attrLaunchType = "sandbox.launch_type"
)

// claimTraces keeps one SandboxClaim span per claim, from the pass that
// first sees it to its first Ready (or its deletion), and parents every
// ReconcileSandboxClaim pass span to it, so that a claim's passes share
// one trace: claim seen, candidate chosen, takeover written (or Sandbox
// created), Ready. The span lives in memory, like the claim's first-seen
// time, rather than in an annotation on the claim, which would cost a
// write per claim. The takeover patch and the cold create carry the pass's
// context to the Sandbox in its trace-context annotation, so the Sandbox
// controller's reconciles join the same trace at no extra write. A claim
// that carries the annotation itself (an SDK's) roots its SandboxClaim
// span in the caller's trace.
//
// A nil *claimTraces (tracing off) does nothing and allocates nothing.
type claimTraces struct {
	tracer trace.Tracer
	mu     sync.Mutex
	roots  map[cache.ObjectName]claimRoot
	// readyUnseen holds the claims whose span ended at Ready until the
	// cache shows them Ready: a pass on the stale cached claim meanwhile
	// must not start a second SandboxClaim span.
	readyUnseen map[cache.ObjectName]types.UID
}

type claimRoot struct {
	uid  types.UID
	span trace.Span
}

func newClaimTraces(t trace.Tracer) *claimTraces {
	if t == nil {
		return nil
	}
	return &claimTraces{tracer: t, roots: map[cache.ObjectName]claimRoot{}, readyUnseen: map[cache.ObjectName]types.UID{}}
}

// start starts the pass span of claim, a child of its SandboxClaim span
// (started here when the claim is new to this process and not Ready yet).
func (t *claimTraces) start(ctx context.Context, key cache.ObjectName, claim *extv1beta1.SandboxClaim) (context.Context, trace.Span) {
	if t == nil {
		return tracing.Start(ctx, nil, spanReconcile)
	}
	claimAttrs := trace.WithAttributes(attribute.String(attrNamespace, claim.Namespace), attribute.String(attrClaim, claim.Name))
	parent := tracing.ContextFromAnnotation(ctx, claim.Annotations[agentsv1beta1.TraceContextAnnotation])
	ready := meta.IsStatusConditionTrue(claim.Status.Conditions, string(agentsv1beta1.SandboxConditionReady))

	t.mu.Lock()
	if uid, found := t.readyUnseen[key]; found && (uid != claim.UID || ready) {
		delete(t.readyUnseen, key)
	}
	_, readyUnseen := t.readyUnseen[key]
	root, ok := t.roots[key]
	if ok && (root.uid != claim.UID || ready) {
		// A claim of the same name replaced it, or it went Ready in a
		// pass this one did not see the end of (another process's).
		root.span.End()
		delete(t.roots, key)
		ok = false
	}
	if !ok && !ready && !readyUnseen {
		_, span := t.tracer.Start(parent, spanClaim, claimAttrs)
		root = claimRoot{uid: claim.UID, span: span}
		t.roots[key] = root
		ok = true
	}
	t.mu.Unlock()

	if ok {
		parent = trace.ContextWithSpan(ctx, root.span)
	}
	return t.tracer.Start(parent, spanReconcile, claimAttrs)
}

// sandbox records the claim's Sandbox and how it was launched, on the
// pass span and the claim's span.
func (t *claimTraces) sandbox(ctx context.Context, key cache.ObjectName, sb *agentsv1beta1.Sandbox) {
	if t == nil || sb == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String(attrSandbox, sb.Name),
		attribute.String(attrLaunchType, sb.Labels[agentsv1beta1.LaunchTypeLabel])}
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if root, ok := t.roots[key]; ok {
		root.span.SetAttributes(attrs...)
	}
}

// event adds a milestone to the pass span.
func (t *claimTraces) event(ctx context.Context, name string, sb *agentsv1beta1.Sandbox) {
	if t == nil {
		return
	}
	trace.SpanFromContext(ctx).AddEvent(name, trace.WithAttributes(attribute.String(attrSandbox, sb.Name)))
}

// end ends the claim's span with a last event: it went Ready, or it is gone.
func (t *claimTraces) end(key cache.ObjectName, event string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	root, ok := t.roots[key]
	delete(t.roots, key)
	switch {
	case event != eventReady:
		delete(t.readyUnseen, key)
	case ok:
		t.readyUnseen[key] = root.uid
	}
	t.mu.Unlock()
	if ok {
		root.span.AddEvent(event)
		root.span.End()
	}
}

// annotation is the trace-context annotation a Sandbox made or taken by
// this pass carries: the pass's own context when tracing, so the Sandbox's
// reconciles join the claim's trace, else the claim's (controllers.md
// §6.4: claims propagate theirs), else none.
func (t *claimTraces) annotation(ctx context.Context, claim *extv1beta1.SandboxClaim) string {
	if t != nil {
		if v := tracing.AnnotationValue(ctx); v != "" {
			return v
		}
	}
	return claim.Annotations[agentsv1beta1.TraceContextAnnotation]
}
