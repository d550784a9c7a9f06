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

package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// versionEvent is one watch event of the synthetic sequences below.
type versionEvent struct{ kind, name, rv string }

func TestCriticalPathCounting(t *testing.T) {
	// A warm claim-1 created at revision 100 and Ready at 110, taking
	// member sb-a; another claim and another member write in between.
	warm := []versionEvent{
		{logSandbox, "sb-a", "40"},   // the member's create: before the claim
		{logPod, "sb-a", "41"},       // its Pod
		{logSandbox, "sb-a", "60"},   // its Ready status
		{logClaim, "claim-1", "100"}, // the claim's create (the bench's)
		{logClaim, "claim-2", "101"}, // someone else's claim
		{logSandbox, "sb-a", "104"},  // takeover
		{logSandbox, "sb-b", "105"},  // another member
		{logPod, "sb-a", "107"},      // the Pod's metadata
		{logClaim, "claim-1", "110"}, // the claim's Ready status
		{logPod, "sb-a", "112"},      // after Ready: off the path
		{logClaim, "claim-1", "120"}, // after Ready: off the path
	}
	tests := map[string]struct {
		events         []versionEvent
		created, ready string
		want           ClaimPath
		wantOK         bool
	}{
		"takeover, Pod metadata and claim status": {warm, "100", "110", ClaimPath{Claim: 1, Sandbox: 1, Pod: 1}, true},
		// A relist hands the handlers versions they saw already.
		"repeated versions count once": {append(append([]versionEvent{}, warm...), versionEvent{logSandbox, "sb-a", "104"}, versionEvent{logClaim, "claim-1", "110"}),
			"100", "110", ClaimPath{Claim: 1, Sandbox: 1, Pod: 1}, true},
		"two takeover attempts and a finalizer": {[]versionEvent{
			{logClaim, "claim-1", "100"}, {logClaim, "claim-1", "102"}, {logSandbox, "sb-a", "103"},
			{logSandbox, "sb-a", "105"}, {logClaim, "claim-1", "110"},
		}, "100", "110", ClaimPath{Claim: 2, Sandbox: 2}, true},
		"Ready not after the create":     {warm, "110", "100", ClaimPath{}, false},
		"no Ready version":               {warm, "100", "", ClaimPath{}, false},
		"a version that is not a number": {append(append([]versionEvent{}, warm...), versionEvent{logPod, "sb-c", "x7"}), "100", "110", ClaimPath{}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := newWriteLog()
			for _, e := range tc.events {
				l.observe(e.kind, e.name, e.rv)
			}
			got, ok := l.path("claim-1", "sb-a", tc.created, tc.ready)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
	var none *writeLog
	none.observe(logClaim, "claim-1", "1")
	if _, ok := none.path("claim-1", "sb-a", "1", "2"); ok {
		t.Error("a scenario without the write log measured a path")
	}
}

func TestSummarizePaths(t *testing.T) {
	if SummarizePaths(nil) != nil {
		t.Error("no warm claim summarised")
	}
	got := SummarizePaths([]ClaimPath{{1, 1, 1}, {1, 1, 0}, {1, 2, 1}, {2, 1, 1}})
	want := &CriticalPath{Claims: 4, P50: 3, Max: 4, Mean: 3.25, ClaimMean: 1.25, SandboxMean: 1.25, PodMean: 0.75}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}
