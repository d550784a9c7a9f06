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

package controller

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// poolMember is a freshly decoded pool member: every string is an
// allocation of its own, as a decoder makes them.
func poolMember(name string, labels map[string]string) *agentsv1beta1.Sandbox {
	fresh := strings.Clone
	l := map[string]string{}
	for k, v := range labels {
		l[fresh(k)] = fresh(v)
	}
	return &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: fresh("ns"), Labels: l,
			Annotations: map[string]string{fresh("agents.x-k8s.io/sandbox-template-ref"): fresh("tmpl")},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: fresh("extensions.agents.x-k8s.io/v1beta1"), Kind: fresh("SandboxWarmPool"),
				Name: fresh("pool"), UID: "pool-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Status: agentsv1beta1.SandboxStatus{
			NodeName:   fresh("node-1"),
			Conditions: []metav1.Condition{{Type: fresh("Ready"), Status: metav1.ConditionStatus(fresh("True")), Reason: fresh("DependenciesReady"), Message: fresh("Pod is Ready")}},
		},
	}
}

func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func sameString(a, b string) bool {
	return a != "" && unsafe.StringData(a) == unsafe.StringData(b)
}

func TestCacheTransformSharesWhatPoolMembersCarryUnchanged(t *testing.T) {
	transform := NewCacheTransform().Transform
	labels := map[string]string{"agents.x-k8s.io/warm-pool-sandbox": "626ebeb9", "agents.x-k8s.io/launch-type": "warm"}
	var got []*agentsv1beta1.Sandbox
	for i := range 3 {
		out, err := transform(poolMember("m"+strconv.Itoa(i), labels))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.(*agentsv1beta1.Sandbox))
	}
	a, b := got[1], got[2]
	if !sameMap(a.Labels, b.Labels) || !sameMap(a.Annotations, b.Annotations) {
		t.Error("identical label or annotation maps are not shared")
	}
	if &a.OwnerReferences[0] != &b.OwnerReferences[0] {
		t.Error("identical owner references are not shared")
	}
	if !sameString(a.Namespace, b.Namespace) || !sameString(a.Status.NodeName, b.Status.NodeName) ||
		!sameString(a.Status.Conditions[0].Message, b.Status.Conditions[0].Message) {
		t.Error("namespace, node name or condition strings are not shared")
	}
	if a.Name != "m1" || b.Name != "m2" {
		t.Errorf("names changed: %q, %q", a.Name, b.Name)
	}

	// A member whose labels differ in one value keeps its own map, with
	// exactly its own content.
	odd, err := transform(poolMember("odd", map[string]string{"agents.x-k8s.io/warm-pool-sandbox": "626ebeb9", "agents.x-k8s.io/launch-type": "cold"}))
	if err != nil {
		t.Fatal(err)
	}
	oddSb := odd.(*agentsv1beta1.Sandbox)
	if sameMap(oddSb.Labels, a.Labels) || oddSb.Labels["agents.x-k8s.io/launch-type"] != "cold" {
		t.Errorf("a different label map was shared or changed: %v", oddSb.Labels)
	}
	// A different owner (another UID) is never shared.
	other := poolMember("other", labels)
	other.OwnerReferences[0].UID = "another-pool"
	out, err := transform(other)
	if err != nil {
		t.Fatal(err)
	}
	if ref := out.(*agentsv1beta1.Sandbox).OwnerReferences[0]; ref.UID != "another-pool" || &out.(*agentsv1beta1.Sandbox).OwnerReferences[0] == &a.OwnerReferences[0] {
		t.Errorf("another owner was shared: %+v", ref)
	}

	// A DeepCopy, where every write starts, owns what it changes.
	cp := a.DeepCopy()
	cp.Labels["agents.x-k8s.io/launch-type"] = "changed"
	cp.OwnerReferences[0].Name = "changed"
	if b.Labels["agents.x-k8s.io/launch-type"] != "warm" || b.OwnerReferences[0].Name != "pool" {
		t.Error("changing a deep copy changed another cached Sandbox")
	}
}

// The Pod cache keeps PodScheduled and Ready without their times, and a
// Pod's metadata is interned as a Sandbox's is.
func TestCacheTransformPods(t *testing.T) {
	transform := NewCacheTransform().Transform
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: strings.Clone("ns"), Labels: map[string]string{"app": strings.Clone("x"), "unique": name}},
			Spec:       corev1.PodSpec{NodeName: strings.Clone("node-1")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes", LastTransitionTime: metav1.Now()},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastProbeTime: metav1.Now(), LastTransitionTime: metav1.Now()},
			}},
		}
	}
	outA, err := transform(pod("a"))
	if err != nil {
		t.Fatal(err)
	}
	outB, err := transform(pod("b"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := outA.(*corev1.Pod), outB.(*corev1.Pod)
	want := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes"},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue},
	}
	if diff := cmp.Diff(want, b.Status.Conditions); diff != "" {
		t.Errorf("cached Pod conditions (-want,+got):\n%s", diff)
	}
	if b.Labels["unique"] != "b" || a.Labels["unique"] != "a" || sameMap(a.Labels, b.Labels) {
		t.Errorf("label maps with different content were shared: %v, %v", a.Labels, b.Labels)
	}
	if &a.Status.Conditions[0] != &b.Status.Conditions[0] {
		t.Error("equal Pod condition lists are not shared")
	}
	c := pod("c")
	c.Status.Conditions[3].Status = corev1.ConditionFalse
	outC, err := transform(c)
	if err != nil {
		t.Fatal(err)
	}
	if conds := outC.(*corev1.Pod).Status.Conditions; &conds[0] == &b.Status.Conditions[0] || conds[1].Status != corev1.ConditionFalse {
		t.Errorf("a different condition list was shared or changed: %+v", conds)
	}
	if !sameString(a.Namespace, b.Namespace) || !sameString(a.Spec.NodeName, b.Spec.NodeName) || !sameString(a.Labels["app"], b.Labels["app"]) {
		t.Error("a Pod's namespace, node name or label values are not shared")
	}
}

// A tenant who writes endless distinct labels fills the tables, which
// start afresh: bounded, and interning goes on working.
func TestMetadataInternerStaysBounded(t *testing.T) {
	in := NewMetadataInterner()
	for i := range 3 * maxInternedStrings {
		v := strconv.Itoa(i)
		m := metav1.ObjectMeta{Labels: map[string]string{"k": v}, OwnerReferences: []metav1.OwnerReference{{Kind: "K", Name: v, UID: "u"}}}
		in.InternObjectMeta(&m)
		conds := in.PodConditions([]corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: v}})
		if m.Labels["k"] != v || m.OwnerReferences[0].Name != v || conds[0].Message != v {
			t.Fatalf("interning changed content: %v %v %v", m.Labels, m.OwnerReferences, conds)
		}
	}
	in.mu.Lock()
	strs, maps, refs, conds := len(in.strs), len(in.stringMap), len(in.ownerRefs), len(in.podConds)
	in.mu.Unlock()
	if strs > maxInternedStrings || maps > maxInternedMaps || refs > maxInternedOwnerRefs || conds > maxInternedPodConds {
		t.Errorf("tables grew past their bounds: %d strings, %d maps, %d owner lists, %d condition lists", strs, maps, refs, conds)
	}
	long := strings.Repeat("x", maxInternedStringLen+1)
	s1, s2 := strings.Clone(long), strings.Clone(long)
	in.Strings(&s1, &s2)
	if sameString(s1, s2) {
		t.Error("a string longer than the bound was interned")
	}
	x1, x2 := strings.Clone("again"), strings.Clone("again")
	in.Strings(&x1, &x2)
	if !sameString(x1, x2) {
		t.Error("interning stopped working after the tables were cleared")
	}
}
