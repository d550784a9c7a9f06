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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// --disable-claim-events silences every claim Event, with or without a
// related Sandbox; without it both kinds are emitted.
func TestDisableEvents(t *testing.T) {
	claim := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}}
	for _, disabled := range []bool{false, true} {
		rec := events.NewFakeRecorder(4)
		c := &Controller{recorder: rec, opts: Options{DisableEvents: disabled}}
		c.event(claim, sb, ReasonSandboxAdopted, "Adoption", "Adopted warm Sandbox %s", sb.Name)
		c.eventf(claim, ReasonClaimExpired, "Claim Expired", "Claim expired")
		want := 2
		if disabled {
			want = 0
		}
		if got := len(rec.Events); got != want {
			t.Errorf("DisableEvents=%v: %d events, want %d", disabled, got, want)
		}
	}
}

// A new claim's first status waits while its Sandbox is merely starting,
// up to FirstStatusDelay after the claim's creation; anything else is
// written at once.
func TestHoldFirstStatus(t *testing.T) {
	now := time.Unix(10_000, 0)
	created := metav1.NewTime(now.Add(-time.Second))
	c := &Controller{opts: Options{FirstStatusDelay: 5 * time.Second, Clock: clocktesting.NewFakeClock(now)}}
	claim := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", CreationTimestamp: created}}
	sandboxWith := func(conds ...metav1.Condition) *agentsv1beta1.Sandbox {
		return &agentsv1beta1.Sandbox{Status: agentsv1beta1.SandboxStatus{Conditions: conds}}
	}
	ready := func(s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: "Ready", Status: s, Reason: reason}
	}
	for name, tc := range map[string]struct {
		claim *extv1beta1.SandboxClaim
		sb    *agentsv1beta1.Sandbox
		want  time.Duration
	}{
		"sandbox without status":   {claim, sandboxWith(), 4 * time.Second},
		"sandbox starting":         {claim, sandboxWith(ready(metav1.ConditionFalse, agentsv1beta1.SandboxReasonDependenciesNotReady)), 4 * time.Second},
		"sandbox ready":            {claim, sandboxWith(ready(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady)), 0},
		"sandbox failing":          {claim, sandboxWith(ready(metav1.ConditionFalse, agentsv1beta1.SandboxReasonReconcilerError)), 0},
		"no sandbox":               {claim, nil, 0},
		"claim already has status": {&extv1beta1.SandboxClaim{ObjectMeta: claim.ObjectMeta, Status: extv1beta1.SandboxClaimStatus{Conditions: []metav1.Condition{ready(metav1.ConditionFalse, "SandboxNotReady")}}}, sandboxWith(), 0},
	} {
		if got := c.firstStatusHold(tc.claim, tc.sb, tc.claim.Status).For; got != tc.want {
			t.Errorf("%s: hold %s, want %s", name, got, tc.want)
		}
	}
	c.opts.FirstStatusDelay = 0
	if got := c.firstStatusHold(claim, sandboxWith(), claim.Status); got.Holds() {
		t.Errorf("delay 0: hold %+v", got)
	}
}
