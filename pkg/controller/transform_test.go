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
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The Pod cache keeps exactly what the controllers read: metadata (without
// managed fields), spec.nodeName, and phase, conditions, IPs, reason and
// message of its status.
func TestStripForCachePods(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Labels: map[string]string{"a": "b"}, Finalizers: []string{"x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}},
		},
		Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			PodIP:             "127.10.0.1",
			PodIPs:            []corev1.PodIP{{IP: "127.10.0.1"}},
			Reason:            "r",
			Message:           "m",
			HostIP:            "127.20.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Image: "i", ImageID: "sha"}},
			QOSClass:          corev1.PodQOSBestEffort,
		},
	}
	got, err := StripForCache(pod)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}},
		Spec:       corev1.PodSpec{NodeName: "n"},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			PodIP:      "127.10.0.1",
			PodIPs:     []corev1.PodIP{{IP: "127.10.0.1"}},
			Reason:     "r",
			Message:    "m",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripped Pod (-want,+got):\n%s", diff)
	}
}

func TestDeletedObject(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	if got := DeletedObject(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod}); got != pod {
		t.Errorf("DeletedObject(tombstone) = %v, want the Pod inside", got)
	}
	if got := DeletedObject(pod); got != pod {
		t.Errorf("DeletedObject(pod) = %v, want the Pod", got)
	}
}
