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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// StripForCache is the informer transform of every cache: managed fields
// are never read, and they are often the largest part of an object.
// Pods additionally keep only spec.nodeName, no finalizers, and of their
// status only what Sandbox status is computed from (phase, conditions, IPs,
// reason, message; container statuses are the bulk of a Pod's status):
// Pods are written only by creates built from the Sandbox template and by
// metadata patches, never from the cache, so the cache needs no more of
// them.
func StripForCache(obj any) (any, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d, nil
	}
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
		pod.Finalizers = nil
		pod.Status = corev1.PodStatus{
			Phase:      pod.Status.Phase,
			Conditions: pod.Status.Conditions,
			Reason:     pod.Status.Reason,
			Message:    pod.Status.Message,
			PodIP:      pod.Status.PodIP,
			PodIPs:     pod.Status.PodIPs,
		}
	}
	return obj, nil
}
