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

package sandboxwarmpool

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Orphans with the pool's label go through the ControllerRefManager: one
// that runs the template is adopted by one merge patch (UID and
// resourceVersion preconditions) after one live read of the pool, one
// that does not is deleted; a member the pool controls that lacks the
// launch-type label gets it by a patch of its own. No full-object Update.
func TestSyncOrphansAndUnmarkedMembers(t *testing.T) {
	tmpl := newTemplate("python")
	orphan := func(from *extv1beta1.SandboxTemplate) *agentsv1beta1.Sandbox {
		sb := member(newPool(1, ""), from, "orphan", time.Hour, true)
		sb.OwnerReferences = nil
		delete(sb.Labels, agentsv1beta1.LaunchTypeLabel)
		delete(sb.Annotations, agentsv1beta1.WarmPoolMemberAnnotation)
		return sb
	}
	unmarked := member(newPool(1, ""), tmpl, "unmarked", time.Hour, true)
	delete(unmarked.Labels, agentsv1beta1.LaunchTypeLabel)
	const poolRef = `{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxWarmPool","name":"pool","uid":"pool-uid","controller":true,"blockOwnerDeletion":true}`
	patchMember := func(name, body string) action {
		return action{Verb: "patch", Resource: "sandboxes", Namespace: ns, Name: name, PatchType: types.MergePatchType, Patch: body}
	}
	getPool := action{Verb: "get", Resource: "sandboxwarmpools", Namespace: ns, Name: "pool"}
	deletingPool := newPool(1, "")
	deletingPool.DeletionTimestamp = &metav1.Time{Time: now}

	for name, tc := range map[string]struct {
		live    *extv1beta1.SandboxWarmPool // the pool the API server holds; default the cached one
		member  *agentsv1beta1.Sandbox
		want    []action
		err     bool
		adopted bool
	}{
		"an orphan running the template is adopted": {
			member: orphan(tmpl), adopted: true,
			want: []action{getPool,
				patchMember("orphan", `{"metadata":{"annotations":{"agents.x-k8s.io/warm-pool-member":"pool-uid"},"labels":{"agents.x-k8s.io/launch-type":"warm"},`+
					`"ownerReferences":[`+poolRef+`],"resourceVersion":"rv-orphan","uid":"uid-orphan"}}`),
				patchPoolStatus(statusPatch(1, 1))},
		},
		"an orphan running another template is deleted, not adopted": {
			member: orphan(newTemplate("python:old")),
			want:   []action{deleteMember(orphan(tmpl)), createMember(t, tmpl), patchPoolStatus(statusPatch(0, 0))},
		},
		"a pool the API server shows as being deleted adopts nothing": {
			// The orphan is not counted, so the pass still fills the pool (as
			// after any failed adoption); the garbage collector takes the
			// new member with the pool. No status from a failed pass.
			live: deletingPool, member: orphan(tmpl), err: true,
			want: []action{getPool, createMember(t, tmpl)},
		},
		"a member without launch-type warm is labelled by a patch": {
			member: unmarked,
			want: []action{patchMember("unmarked", `{"metadata":{"labels":{"agents.x-k8s.io/launch-type":"warm"},"resourceVersion":"rv-unmarked"}}`),
				patchPoolStatus(statusPatch(1, 1))},
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			pool := newPool(1, "")
			f.seed(pool, tmpl, tc.member)
			if tc.live != nil {
				if err := f.client.Tracker().Update(extv1beta1.SandboxWarmPoolsResource, tc.live, ns); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.runErr(); (err != nil) != tc.err {
				t.Errorf("sync error %v, want error %v", err, tc.err)
			}
			f.expectActions(tc.want...)
			if got := f.c.opts.Provenance.CreatedBy("pool-uid", tc.member); got != tc.adopted {
				t.Errorf("provenance records the orphan: %v, want %v", got, tc.adopted)
			}
		})
	}
}
