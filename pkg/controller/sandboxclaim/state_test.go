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
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// A claim re-created under the same name (the old one's delete event
// missed) replaces the old one's state instead of adding to it, and a
// NotFound sync of that name frees whichever UID holds it.
func TestClaimStateOneEntryPerName(t *testing.T) {
	s := newClaimState(clocktesting.NewFakeClock(now))
	old, renewed := newClaim("c1"), newClaim("c1")
	renewed.UID = "c1-second-uid"
	s.seen(old)
	s.bind(old, "sb-1")
	s.reserve(newMember("pool-a", memberReady, time.Minute), old.UID)
	s.seen(renewed)
	if diff := cmp.Diff(StateSize{Claims: 1}, s.size()); diff != "" {
		t.Errorf("after the name was taken by a new claim (-want,+got):\n%s", diff)
	}
	if _, ok := s.boundTo(old.UID); ok {
		t.Error("the old claim's binding is still remembered")
	}
	s.forgetKey(cache.ObjectName{Namespace: ns, Name: "c1"})
	if diff := cmp.Diff(StateSize{}, s.size()); diff != "" {
		t.Errorf("after a NotFound sync (-want,+got):\n%s", diff)
	}
}

// State keyed by a Sandbox goes with the Sandbox, and expires: a
// reported forged binding is reported again after untrustedTTL, and the
// expired entries of other Sandboxes are swept meanwhile.
func TestClaimStateSandboxKeyedExpiry(t *testing.T) {
	clock := clocktesting.NewFakeClock(now)
	s := newClaimState(clock)
	member := newMember("pool-a", memberReady, time.Minute)
	s.reserve(member, "c1-uid")
	if !s.firstUntrusted("c1-uid", "forged-1") || s.firstUntrusted("c1-uid", "forged-1") {
		t.Fatal("a forged binding is reported exactly once")
	}
	s.sandboxGone(member.UID)
	s.sandboxGone("forged-1")
	if diff := cmp.Diff(StateSize{}, s.size()); diff != "" {
		t.Errorf("after the Sandboxes' delete events (-want,+got):\n%s", diff)
	}

	s.firstUntrusted("c1-uid", "forged-1")
	s.reserve(member, "c1-uid")
	clock.Step(untrustedTTL)
	if !s.firstUntrusted("c2-uid", "forged-2") {
		t.Fatal("a new forged binding is reported")
	}
	if !s.firstUntrusted("c1-uid", "forged-1") {
		t.Error("an expired report is not repeated")
	}
	if !s.reserve(newMember("pool-b", memberReady, time.Minute), "c2-uid") {
		t.Fatal("pool-b is free")
	}
	if diff := cmp.Diff(StateSize{Untrusted: 2, Reservations: 1}, s.size()); diff != "" {
		t.Errorf("expired entries were not swept (-want,+got):\n%s", diff)
	}
}

// A template verdict computed for a Sandbox whose delete event was
// handled meanwhile (the pass read it from the cache just before) is not
// kept: nothing would free it.
func TestTemplateVerdictOfADeletedSandboxNotKept(t *testing.T) {
	live, gone := newMember("pool-a", memberReady, time.Minute), newMember("pool-b", memberReady, time.Minute)
	f := newFixture(t, newTemplate(), newPool(), live)
	checker := sandboxpolicy.NewStalenessChecker(newTemplate(), sandboxpolicy.SecureDefaults{})
	if !f.c.matches(checker, live) || !f.c.matches(checker, gone) {
		t.Fatal("both run the template")
	}
	if n := f.c.StateSize().TemplateVerdicts; n != 1 {
		t.Errorf("%d template verdicts, want 1 (the cached Sandbox's only)", n)
	}
}
