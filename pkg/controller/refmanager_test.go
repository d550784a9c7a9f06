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
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	k8sfake "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
)

const refNS = "team"

// The owner's controller reference as the patches spell it.
const ownerRefJSON = `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","name":"box","uid":"box-uid","controller":true,"blockOwnerDeletion":true}`

func refOwner(edit func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: "box", UID: "box-uid"}}
	if edit != nil {
		edit(sb)
	}
	return sb
}

// refPod is a Pod with the given owner references; "match" in its labels
// is what the tests' Match looks for.
func refPod(name string, match bool, refs ...metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: name, UID: types.UID(name + "-uid"),
		ResourceVersion: "7", OwnerReferences: refs}}
	if match {
		pod.Labels = map[string]string{"match": "yes"}
	}
	return pod
}

func controllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, gvk)
}

// otherRef is an owner reference that is not a controller's.
var otherRef = metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "cm", UID: "cm-uid"}

var deleting = metav1.NewTime(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))

func podPatch(name, body string) controllertest.Action {
	return controllertest.Action{Verb: "patch", Resource: "pods", Namespace: refNS, Name: name, PatchType: types.MergePatchType, Patch: body}
}

var getOwner = controllertest.Action{Verb: "get", Resource: "sandboxes", Namespace: refNS, Name: "box"}

func TestClaimObject(t *testing.T) {
	owner := refOwner(nil)
	ours := controllerRef(owner, agentsv1beta1.SandboxGroupVersionKind)
	foreign := controllerRef(&extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", UID: "pool-uid"}},
		extv1beta1.SandboxWarmPoolGroupVersionKind)
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Invalid(field.NewPath("metadata", "uid"), "x", "precondition")})
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", nil)

	cases := map[string]struct {
		cached *agentsv1beta1.Sandbox // the owner as the sync's cache shows it; default owner
		live   *agentsv1beta1.Sandbox // the owner the API server holds; nil: none
		pod    *corev1.Pod
		stored bool  // the Pod exists in the API server
		patch  error // what the API server answers a Pod patch with
		ctl    func(*ChildControl)
		want   ClaimResult
		err    bool
		acts   []controllertest.Action
	}{
		"controlled and matching is kept": {
			pod: refPod("p", true, ours), stored: true, want: ClaimOwned,
		},
		"controlled and matching is kept while the owner is being deleted": {
			cached: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &deleting }),
			pod:    refPod("p", true, ours), stored: true, want: ClaimOwned,
		},
		"controlled but no longer matching is released": {
			pod: refPod("p", false, ours), stored: true, want: ClaimReleased,
			acts: []controllertest.Action{podPatch("p", `{"metadata":{"ownerReferences":null,"uid":"p-uid"}}`)},
		},
		"release keeps the other owners' references": {
			pod: refPod("p", false, otherRef, ours), stored: true, want: ClaimReleased,
			acts: []controllertest.Action{podPatch("p",
				`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"cm","uid":"cm-uid"}],"uid":"p-uid"}}`)},
		},
		"release with the resourceVersion precondition": {
			pod: refPod("p", false, ours), stored: true, want: ClaimReleased,
			ctl:  func(c *ChildControl) { c.ResourceVersion = true },
			acts: []controllertest.Action{podPatch("p", `{"metadata":{"ownerReferences":null,"resourceVersion":"7","uid":"p-uid"}}`)},
		},
		"a deleting owner releases nothing": {
			cached: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &deleting }),
			pod:    refPod("p", false, ours), stored: true, want: ClaimSkipped,
		},
		"release of a Pod that is gone counts as done": {
			pod: refPod("p", false, ours), want: ClaimReleased,
			acts: []controllertest.Action{podPatch("p", `{"metadata":{"ownerReferences":null,"uid":"p-uid"}}`)},
		},
		"release refused as invalid (the uid precondition) counts as done": {
			pod: refPod("p", false, ours), stored: true, patch: invalid, want: ClaimReleased,
			acts: []controllertest.Action{podPatch("p", `{"metadata":{"ownerReferences":null,"uid":"p-uid"}}`)},
		},
		"a failed release leaves it owned": {
			pod: refPod("p", false, ours), stored: true, patch: conflict, want: ClaimOwned, err: true,
			acts: []controllertest.Action{podPatch("p", `{"metadata":{"ownerReferences":null,"uid":"p-uid"}}`)},
		},
		"controlled by another is ignored, matching or not": {
			pod: refPod("p", true, foreign), stored: true, want: ClaimForeign,
		},
		"an orphan that does not match is left alone": {
			live: owner, pod: refPod("p", false), stored: true, want: ClaimUnmatched,
		},
		"a matching orphan in another namespace is left alone": {
			live: owner, stored: true, want: ClaimUnmatched,
			pod: func() *corev1.Pod { p := refPod("p", true); p.Namespace = "elsewhere"; return p }(),
		},
		"a matching orphan is adopted after a live read of the owner": {
			live: owner, pod: refPod("p", true, otherRef), stored: true, want: ClaimAdopted,
			acts: []controllertest.Action{getOwner, podPatch("p",
				`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"cm","uid":"cm-uid"},`+ownerRefJSON+`],"uid":"p-uid"}}`)},
		},
		"adoption sends the caller's fields and the resourceVersion in the same write": {
			live: owner, pod: refPod("p", true), stored: true, want: ClaimAdopted,
			ctl: func(c *ChildControl) {
				c.ResourceVersion = true
				c.AdoptFields = func(metav1.Object) (map[string]any, error) {
					return map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}}, "spec": map[string]any{"x": 1}}, nil
				}
			},
			acts: []controllertest.Action{getOwner, podPatch("p",
				`{"metadata":{"labels":{"a":"b"},"ownerReferences":[`+ownerRefJSON+`],"resourceVersion":"7","uid":"p-uid"},"spec":{"x":1}}`)},
		},
		"a matching orphan being deleted is not adopted": {
			live: owner, stored: true, want: ClaimSkipped,
			pod: func() *corev1.Pod { p := refPod("p", true); p.DeletionTimestamp = &deleting; return p }(),
		},
		"an owner the cache shows as deleting adopts nothing": {
			cached: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &deleting }),
			live:   owner, pod: refPod("p", true), stored: true, want: ClaimSkipped,
		},
		"an owner the API server shows as deleting adopts nothing": {
			live: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &deleting }),
			pod:  refPod("p", true), stored: true, want: ClaimSkipped, err: true,
			acts: []controllertest.Action{getOwner},
		},
		"an owner replaced under the same name adopts nothing": {
			live: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.UID = "new-box-uid" }),
			pod:  refPod("p", true), stored: true, want: ClaimSkipped, err: true,
			acts: []controllertest.Action{getOwner},
		},
		"an owner that is gone adopts nothing": {
			pod: refPod("p", true), stored: true, want: ClaimSkipped, err: true,
			acts: []controllertest.Action{getOwner},
		},
		"an orphan gone before the adoption counts as skipped": {
			live: owner, pod: refPod("p", true), want: ClaimSkipped,
			acts: []controllertest.Action{getOwner, podPatch("p", `{"metadata":{"ownerReferences":[`+ownerRefJSON+`],"uid":"p-uid"}}`)},
		},
		"a failed adoption is an error": {
			live: owner, pod: refPod("p", true), stored: true, patch: conflict, want: ClaimSkipped, err: true,
			acts: []controllertest.Action{getOwner, podPatch("p", `{"metadata":{"ownerReferences":[`+ownerRefJSON+`],"uid":"p-uid"}}`)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			var kubeObjs []runtime.Object
			if tc.stored {
				kubeObjs = append(kubeObjs, tc.pod.DeepCopy())
			}
			f := newRefFixture(t, tc.live, kubeObjs...)
			if tc.patch != nil {
				f.kube.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.patch })
			}
			cached := tc.cached
			if cached == nil {
				cached = owner
			}
			ctl := f.podControl()
			if tc.ctl != nil {
				tc.ctl(&ctl)
			}
			got, err := f.manager(cached).ClaimObject(ctx, tc.pod, ctl)
			if (err != nil) != tc.err {
				t.Errorf("error %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("result %d, want %d", got, tc.want)
			}
			controllertest.ExpectActions(t, tc.acts, &f.agents.Fake, &f.kube.Fake)
		})
	}
}

// The owner is read once per sync however many orphans it adopts, and a
// failed read fails them all without another.
func TestClaimObjectRechecksOwnerOnce(t *testing.T) {
	for name, tc := range map[string]struct {
		live *agentsv1beta1.Sandbox
		want ClaimResult
		acts []controllertest.Action
	}{
		"owner live": {live: refOwner(nil), want: ClaimAdopted, acts: []controllertest.Action{
			getOwner,
			podPatch("a", `{"metadata":{"ownerReferences":[`+ownerRefJSON+`],"uid":"a-uid"}}`),
			podPatch("b", `{"metadata":{"ownerReferences":[`+ownerRefJSON+`],"uid":"b-uid"}}`),
		}},
		"owner being deleted": {live: refOwner(func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &deleting }),
			want: ClaimSkipped, acts: []controllertest.Action{getOwner}},
	} {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			a, b := refPod("a", true), refPod("b", true)
			f := newRefFixture(t, tc.live, a, b)
			m := f.manager(refOwner(nil))
			for _, pod := range []*corev1.Pod{a, b} {
				got, err := m.ClaimObject(ctx, pod, f.podControl())
				if got != tc.want || (err != nil) != (tc.want == ClaimSkipped) {
					t.Errorf("%s: result %d, error %v; want %d", pod.Name, got, err, tc.want)
				}
			}
			controllertest.ExpectActions(t, tc.acts, &f.agents.Fake, &f.kube.Fake)
		})
	}
}

// TransferControllerRef replaces every owner reference with the new
// owner's and sends the resourceVersion the caller judged, beside the
// caller's fields.
func TestTransferControllerRef(t *testing.T) {
	claim := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "claim-uid"}}
	member := refOwner(func(sb *agentsv1beta1.Sandbox) {
		sb.ResourceVersion = "42"
		sb.OwnerReferences = []metav1.OwnerReference{otherRef, controllerRef(&extv1beta1.SandboxWarmPool{
			ObjectMeta: metav1.ObjectMeta{Name: "pool", UID: "pool-uid"}}, extv1beta1.SandboxWarmPoolGroupVersionKind)}
	})
	claimRef := `[{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","name":"c","uid":"claim-uid","controller":true,"blockOwnerDeletion":true}]`
	for name, tc := range map[string]struct {
		fields map[string]any
		want   string
	}{
		"alone": {want: `{"metadata":{"ownerReferences":` + claimRef + `,"resourceVersion":"42"}}`},
		"with fields": {
			fields: map[string]any{"metadata": map[string]any{"labels": map[string]any{"k": nil}}, "spec": map[string]any{"x": 1}},
			want:   `{"metadata":{"labels":{"k":null},"ownerReferences":` + claimRef + `,"resourceVersion":"42"},"spec":{"x":1}}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := TransferControllerRef(member, claim, extv1beta1.SandboxClaimGroupVersionKind, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("patch (-want,+got):\n%s", diff)
			}
			if md, _ := tc.fields["metadata"].(map[string]any); md["ownerReferences"] != nil || md["resourceVersion"] != nil {
				t.Error("the caller's fields were changed")
			}
		})
	}
}

type refFixture struct {
	kube   *k8sfake.Clientset
	agents *fake.Clientset
}

// newRefFixture holds live (if any) in the agents fake and kubeObjs in the
// kube fake.
func newRefFixture(t *testing.T, live *agentsv1beta1.Sandbox, kubeObjs ...runtime.Object) *refFixture {
	t.Helper()
	f := &refFixture{kube: k8sfake.NewSimpleClientset(kubeObjs...), agents: fake.NewSimpleClientset()}
	if live != nil {
		// The fake tracker would guess "sandboxs" from the kind.
		if err := f.agents.Tracker().Create(agentsv1beta1.SandboxesResource, live, live.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *refFixture) manager(owner *agentsv1beta1.Sandbox) *ControllerRefManager {
	return NewControllerRefManager(owner, agentsv1beta1.SandboxGroupVersionKind,
		RecheckDeletionTimestamp(owner, func(ctx context.Context) (metav1.Object, error) {
			return f.agents.AgentsV1beta1().Sandboxes(owner.Namespace).Get(ctx, owner.Name, metav1.GetOptions{})
		}))
}

func (f *refFixture) podControl() ChildControl {
	return ChildControl{
		Kind:  "Pod",
		Match: func(o metav1.Object) bool { return o.GetLabels()["match"] == "yes" },
		Patch: func(ctx context.Context, name string, data []byte) error {
			_, err := f.kube.CoreV1().Pods(refNS).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
			return err
		},
	}
}
