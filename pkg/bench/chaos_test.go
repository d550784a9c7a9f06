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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func TestParsePhases(t *testing.T) {
	got, err := ParsePhases("single:60s, leader:1m30s")
	if err != nil {
		t.Fatal(err)
	}
	want := []Phase{{Mode: ModeSingle, Duration: time.Minute}, {Mode: ModeLeader, Duration: 90 * time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	for _, bad := range []string{"", "single", "triple:10s", "leader:0s", "single:x"} {
		if _, err := ParsePhases(bad); err == nil {
			t.Errorf("ParsePhases(%q) accepted", bad)
		}
	}
}

func TestSetRecoveries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	claims := []readyClaim{
		{start: at(0), ready: at(1)},
		// Sent before the fault at 10s and Ready after it: proves nothing.
		{start: at(9), ready: at(10.5)},
		{start: at(11), ready: at(16)},
		// Sent later but Ready sooner: the first Ready wins.
		{start: at(12), ready: at(14)},
		{start: at(13)}, // never Ready (deleted first)
		{start: at(30)},
	}
	faults := []Fault{
		{Kind: FaultControllerKill, at: at(10)},
		{Kind: FaultEtcdRestart, at: at(11.5)},
		// No claim sent after it was ever Ready.
		{Kind: FaultAPIServerRestart, at: at(20)},
	}
	setRecoveries(faults, claims)
	var got []*float64
	for _, f := range faults {
		got = append(got, f.RecoverySeconds)
	}
	want := []*float64{ptr.To(4.0), ptr.To(2.5), nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recoveries (-want,+got):\n%s", diff)
	}
	sum := summarizeFaults(faults)
	wantSum := []FaultKindSummary{
		{Kind: FaultControllerKill, Count: 1, Recovered: 1, RecoveryP50Sec: 4, RecoveryP90Sec: 4, RecoveryMaxSec: 4},
		{Kind: FaultAPIServerRestart, Count: 1},
		{Kind: FaultEtcdRestart, Count: 1, Recovered: 1, RecoveryP50Sec: 2.5, RecoveryP90Sec: 2.5, RecoveryMaxSec: 2.5},
	}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("summary (-want,+got):\n%s", diff)
	}
}

// Objects of a settled-state List.
func ctrlRef(kind, name, uid string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}}
}

func readyConds() []metav1.Condition {
	return []metav1.Condition{{Type: agentsv1beta1.SandboxConditionReady.String(), Status: metav1.ConditionTrue}}
}

// stSandbox is a Ready Sandbox controlled by ownerKind owner.
func stSandbox(name, ownerKind, owner string) agentsv1beta1.Sandbox {
	sb := agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
		OwnerReferences: ctrlRef(ownerKind, owner, "uid-"+owner)}}
	sb.Status.Conditions = readyConds()
	return sb
}

func stClaim(name, sandbox string, ready bool) extv1beta1.SandboxClaim {
	cl := extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
	cl.Status.SandboxStatus.Name = sandbox
	if ready {
		cl.Status.Conditions = readyConds()
	}
	return cl
}

func stPool(name string, replicas, ready int32) extv1beta1.SandboxWarmPool {
	p := extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(replicas)}}
	p.Status.ReadyReplicas = ready
	return p
}

func stPod(name, sandbox string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: ctrlRef(agentsv1beta1.SandboxKind, sandbox, "uid-"+sandbox)}}
}

func TestSettledViolations(t *testing.T) {
	pool, claim := extv1beta1.SandboxWarmPoolKind, extv1beta1.SandboxClaimKind
	settled := func() nsState {
		return nsState{
			Pools:     []extv1beta1.SandboxWarmPool{stPool("pool-0", 1, 1)},
			Sandboxes: []agentsv1beta1.Sandbox{stSandbox("m1", pool, "pool-0"), stSandbox("s1", claim, "c1")},
			Claims:    []extv1beta1.SandboxClaim{stClaim("c1", "s1", true)},
			Pods:      []corev1.Pod{stPod("m1", "m1"), stPod("s1", "s1")},
			Services:  []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "s1", OwnerReferences: ctrlRef(agentsv1beta1.SandboxKind, "s1", "uid-s1")}}},
		}
	}
	tests := map[string]struct {
		change func(*nsState)
		want   []string
	}{
		"settled": {change: func(*nsState) {}},
		"sandbox of a deleted claim": {
			change: func(st *nsState) { st.Claims = nil },
			// Its Pod and Service go with it.
			want: []string{RuleLeakedPod, RuleLeakedSandbox, RuleLeakedService},
		},
		"pod of no sandbox": {
			change: func(st *nsState) { st.Pods = append(st.Pods, stPod("orphan", "gone")) },
			want:   []string{RuleLeakedPod},
		},
		"pvc of a sandbox being deleted": {
			change: func(st *nsState) {
				st.Sandboxes[1].DeletionTimestamp = &metav1.Time{Time: time.Now()}
				st.PVCs = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data-s1", OwnerReferences: ctrlRef(agentsv1beta1.SandboxKind, "s1", "uid-s1")}}}
			},
			want: []string{RuleLeakedPVC, RuleLeakedPod, RuleLeakedSandbox, RuleLeakedService},
		},
		"claim not Ready": {
			change: func(st *nsState) { st.Claims[0].Status.Conditions = nil },
			want:   []string{RuleClaimNotReady},
		},
		"pool short of a member": {
			change: func(st *nsState) { st.Pools[0].Spec.Replicas = ptr.To(int32(2)) },
			want:   []string{RulePoolNotWhole},
		},
		"pool status behind": {
			change: func(st *nsState) { st.Pools[0].Status.ReadyReplicas = 0 },
			want:   []string{RulePoolNotWhole},
		},
		"pool member not Ready": {
			change: func(st *nsState) { st.Sandboxes[0].Status.Conditions = nil },
			want:   []string{RulePoolNotWhole},
		},
		"a sandbox of another pool": {
			change: func(st *nsState) {
				st.Sandboxes = append(st.Sandboxes, stSandbox("x1", pool, "elsewhere"))
			},
			want: []string{RuleLeakedSandbox},
		},
		"claim controls two sandboxes": {
			change: func(st *nsState) { st.Sandboxes = append(st.Sandboxes, stSandbox("s2", claim, "c1")) },
			want:   []string{RuleClaimControlsTwoSandboxes},
		},
		"two claims name one sandbox": {
			change: func(st *nsState) { st.Claims = append(st.Claims, stClaim("c2", "s1", true)) },
			want:   []string{RuleClaimNamesForeignSandbox, RuleSandboxNamedByTwoClaims},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := settled()
			tc.change(&st)
			vs := settledViolations(st, []string{"pool-0"}, time.Second)
			got := rules(vs)
			slices.Sort(tc.want)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want,+got):\n%s\n%v", diff, vs)
			}
		})
	}
}

func TestLastLogLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 400)
	for content, want := range map[string]string{
		"first\nE1206 cache corrupted\n\n": "E1206 cache corrupted",
		"only":                             "only",
		"a\n" + long + "\n":                long[:300],
	} {
		if err := os.WriteFile(filepath.Join(dir, "logs", "kube-scheduler.log"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := lastLogLine(dir, "kube-scheduler"); got != want {
			t.Errorf("lastLogLine of %q = %q, want %q", content, got, want)
		}
	}
	if got := lastLogLine(dir, "absent"); got != "" {
		t.Errorf("lastLogLine of a missing log = %q", got)
	}
}
