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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

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
