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

package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
)

// Consenting orphans (PVC, Pod, Service) are adopted through the
// ControllerRefManager: one live read of the Sandbox for the whole pass,
// then one merge patch per child with its UID as precondition, carrying
// what the Sandbox writes to that child anyway. A Sandbox the API server
// shows as being deleted adopts nothing.
func TestSyncAdoptsConsentingOrphans(t *testing.T) {
	consent := map[string]string{agentsv1beta1.AdoptableLabel: "true"}
	sb := sandbox("kept", func(sb *agentsv1beta1.Sandbox) {
		sb.Spec.Service = ptr.To(true)
		sb.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{{
			EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}}
	})
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-kept", UID: "pvc-uid", Labels: consent}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept", UID: "pod-uid", Labels: consent},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "127.10.0.9"}}}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept", UID: "svc-uid", ResourceVersion: "4", Labels: consent},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "old"}, Ports: []corev1.ServicePort{{Name: "old", Port: 1}}}}

	const ref = `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","name":"kept","uid":"kept-uid","controller":true,"blockOwnerDeletion":true}`
	hash := agentsv1beta1.NameHash("kept")
	patch := func(resource, name, body string) controllertest.Action {
		return controllertest.Action{Verb: "patch", Resource: resource, Namespace: ns, Name: name, PatchType: types.MergePatchType, Patch: body}
	}
	getSandbox := controllertest.Action{Verb: "get", Resource: "sandboxes", Namespace: ns, Name: "kept"}
	for name, tc := range map[string]struct {
		live   *agentsv1beta1.Sandbox
		acts   []controllertest.Action
		events []string
		reason string
	}{
		"adopted": {
			live: sb,
			acts: []controllertest.Action{
				patch("persistentvolumeclaims", "data-kept", `{"metadata":{"ownerReferences":[`+ref+`],"uid":"pvc-uid"}}`),
				patch("pods", "kept", `{"metadata":{"labels":{"agents.x-k8s.io/sandbox-name-hash":"`+hash+`"},"ownerReferences":[`+ref+`],"uid":"pod-uid"}}`),
				patch("services", "kept", `{"metadata":{"labels":{"agents.x-k8s.io/sandbox-name-hash":"`+hash+`"},"ownerReferences":[`+ref+`],"resourceVersion":"4","uid":"svc-uid"},`+
					`"spec":{"ports":[{"name":"p-8888-tcp","protocol":"TCP","port":8888,"targetPort":8888}],"selector":{"agents.x-k8s.io/sandbox-name-hash":"`+hash+`","app":null}}}`),
				getSandbox,
			},
			events: []string{
				"Normal Adopted Adopted PersistentVolumeClaim data-kept",
				"Normal Adopted Adopted Pod kept",
				"Normal Adopted Adopted Service kept",
			},
			reason: agentsv1beta1.SandboxReasonDependenciesNotReady, // the Pod is not Ready
		},
		"the API server shows the Sandbox being deleted": {
			live: sandbox("kept", func(sb *agentsv1beta1.Sandbox) { sb.DeletionTimestamp = &metav1.Time{Time: now} }),
			acts: []controllertest.Action{getSandbox},
			events: []string{
				"Warning FailedAdopt Failed to adopt PersistentVolumeClaim data-kept: team/kept is being deleted (since 2026-11-29T12:00:00Z)",
				"Warning FailedAdopt Failed to adopt Pod kept: team/kept is being deleted (since 2026-11-29T12:00:00Z)",
				"Warning FailedAdopt Failed to adopt Service kept: team/kept is being deleted (since 2026-11-29T12:00:00Z)",
			},
			reason: agentsv1beta1.SandboxReasonReconcilerError,
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*agentsv1beta1.Sandbox{tc.live}, pvc, pod, svc)
			f.seed(sb) // the cache shows the Sandbox live
			_, _ = f.syncResult("kept")
			var got []controllertest.Action
			var status int
			for _, a := range controllertest.Actions(&f.kube.Fake, &f.agents.Fake) {
				if a.Subresource == "status" {
					status++ // its body is the status tests' business
					continue
				}
				got = append(got, a)
			}
			if diff := cmp.Diff(tc.acts, got); diff != "" {
				t.Errorf("actions (-want,+got):\n%s", diff)
			}
			if status != 1 {
				t.Errorf("%d status writes, want 1", status)
			}
			controllertest.ExpectEvents(t, f.recorder, tc.events...)
			if c := meta.FindStatusCondition(f.patchedSandbox("kept").Status.Conditions, "Ready"); c == nil || c.Reason != tc.reason {
				t.Errorf("Ready = %+v, want reason %s", c, tc.reason)
			}
		})
	}
}
