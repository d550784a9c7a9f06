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

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Found by sandbox-bench chaos and soak (docs/reliability.md): under an
// overloaded API server the Sandbox watch lagged the claim's own writes by
// more than bindingLag. The claim had created its cold Sandbox and written
// its name into status; once bindingLag passed with the Sandbox still not
// in the cache, the next sync took a warm member too, and when the cold
// Sandbox finally arrived it was "not its binding" and was ignored: one
// claim controlling two Sandboxes, the cold one leaked for the claim's
// life. A claim whose own status names a Sandbox that the cache does not
// show yet must wait for it, not take another.
func TestSyncLaggingCacheNeverBindsASecondSandbox(t *testing.T) {
	claim := newClaim("c1")
	// No member yet: the first sync goes cold.
	f := newFixture(t, newTemplate(), newPool(), claim)
	f.runOK("c1")
	f.expectActions(createSandbox(coldSandbox(claim)), notReadyStatus(t, "c1", "c1", extv1beta1.ColdReasonNoReadyMember))
	f.expectEvents("Normal SandboxProvisioned Created Sandbox c1 from template python")

	// The claim's status write reached the cache; the Sandbox's create
	// did not, for longer than bindingLag. A Ready member appears.
	withStatus := claim.DeepCopy()
	withStatus.Status.SandboxStatus.Name = "c1"
	f.cache(withStatus)
	f.clock.Step(bindingLag + time.Second)
	f.add(newMember("pool-a", memberReady, time.Minute))

	// The claim asks the API server, finds its Sandbox there and waits for
	// the cache: one read, no write.
	if requeue := f.runOK("c1"); requeue != warmWaitStep {
		t.Errorf("requeue %s, want %s (waiting for the cache)", requeue, warmWaitStep)
	}
	f.expectActions(listClaimSandboxes(claim))
	// Within the next bindingLag it waits without asking again.
	f.runOK("c1")
	f.expectActions()

	// The Sandbox reaches the cache: it is the binding, pool-a is left.
	created, err := f.agents.Tracker().Get(agentsv1beta1.SandboxesResource, ns, "c1")
	if err != nil {
		t.Fatal(err)
	}
	f.cache(created)
	f.runOK("c1")
	for _, a := range f.actions() {
		if a.Resource == "sandboxes" {
			t.Errorf("the claim's own Sandbox is in the cache, yet it sent %s %s/%s", a.Verb, a.Resource, a.Name)
		}
	}
	if got := f.c.StateSize().Reservations; got != 0 {
		t.Errorf("%d reservations: the member was never to be taken", got)
	}
}

// TestSyncDeletedSandboxOfAClaimIsReplaced: the other side of the lag
// check. The claim's status names a Sandbox that neither the cache nor the
// API server has (deleted, e.g. by hand, while this controller was down):
// after one read the claim is served again, here by a warm member.
func TestSyncDeletedSandboxOfAClaimIsReplaced(t *testing.T) {
	claim := newClaim("c1", func(c *extv1beta1.SandboxClaim) { c.Status.SandboxStatus.Name = "c1" })
	f := newFixture(t, newTemplate(), newPool(), claim, newMember("pool-a", memberReady, time.Minute))
	f.runOK("c1")
	var got []string
	for _, a := range f.actions() {
		got = append(got, a.Verb+" "+a.Resource+"/"+a.Subresource+" "+a.Name)
	}
	want := []string{"list sandboxes/ ", "get sandboxes/ c1", "patch sandboxes/ pool-a", "patch sandboxclaims/status c1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want,+got):\n%s", diff)
	}
}

// listClaimSandboxes is the controller's own read of the Sandboxes that
// carry claim's UID label.
func listClaimSandboxes(claim *extv1beta1.SandboxClaim) action {
	return action{Verb: "list", Resource: "sandboxes", Namespace: ns,
		Body: labels.Set{agentsv1beta1.SandboxIDLabel: string(claim.UID)}.String()}
}
