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
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// TestClaimTracesOneSpanPerClaim: the passes of a claim share its
// SandboxClaim span, which ends at Ready; a pass on the stale cached
// claim after that (the cache does not show Ready yet) starts no second
// one, and neither does a pass once the cache shows it Ready.
func TestClaimTracesOneSpanPerClaim(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	traces := newClaimTraces(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("t"))
	key := cache.ObjectName{Namespace: "ns", Name: "c"}
	stale := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u1"}}
	ready := stale.DeepCopy()
	ready.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}

	pass := func(claim *extv1beta1.SandboxClaim) {
		_, span := traces.start(context.Background(), key, claim)
		span.End()
	}
	pass(stale)
	pass(stale)
	traces.end(key, eventReady)
	// The transition seen again on the stale claim: nothing to end.
	pass(stale)
	traces.end(key, eventReady)
	pass(stale)
	pass(ready)

	var roots []sdktrace.ReadOnlySpan
	passes := 0
	for _, s := range rec.Ended() {
		switch s.Name() {
		case spanClaim:
			roots = append(roots, s)
		case spanReconcile:
			passes++
		}
	}
	if len(roots) != 1 || passes != 5 {
		t.Fatalf("%d SandboxClaim spans and %d passes, want 1 and 5", len(roots), passes)
	}
	if ev := roots[0].Events(); len(ev) != 1 || ev[0].Name != eventReady {
		t.Errorf("SandboxClaim span events %v, want Ready", ev)
	}
	children := 0
	for _, s := range rec.Ended() {
		if s.Name() == spanReconcile && s.Parent().SpanID() == roots[0].SpanContext().SpanID() {
			children++
		}
	}
	if children != 2 {
		t.Errorf("%d passes under the SandboxClaim span, want the 2 before Ready", children)
	}

	// A claim of the same name, new UID: a span of its own.
	next := stale.DeepCopy()
	next.UID = "u2"
	pass(next)
	traces.end(key, eventDeleted)
	n := 0
	for _, s := range rec.Ended() {
		if s.Name() == spanClaim {
			n++
		}
	}
	if n != 2 || len(traces.roots) != 0 || len(traces.readyUnseen) != 0 {
		t.Errorf("after the replacement: %d SandboxClaim spans (want 2), %d roots and %d ready-unseen left (want none)", n, len(traces.roots), len(traces.readyUnseen))
	}
}
