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

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// StripForCache is the informer transform of every cache: managed fields
// are never read, and they are often the largest part of an object.
// Pods additionally keep only spec.nodeName, no finalizers, and of their
// status only what Sandbox status is computed from (phase, IPs, reason,
// message, and of the conditions PodScheduled and Ready without their
// times; container statuses are the bulk of a Pod's status): Pods are
// written only by creates built from the Sandbox template and by metadata
// patches, never from the cache, so the cache needs no more of them.
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
			Conditions: readPodConditions(pod.Status.Conditions),
			Reason:     pod.Status.Reason,
			Message:    pod.Status.Message,
			PodIP:      pod.Status.PodIP,
			PodIPs:     pod.Status.PodIPs,
		}
	}
	return obj, nil
}

// readPodConditions keeps the Pod conditions the controllers read
// (PodScheduled for the Sandbox's PodScheduled and the pool's
// unschedulable members, Ready for the Sandbox's Ready), without the
// times, which nothing reads: a Pod's other conditions and their
// timestamps were a sixth of a cached Pod.
func readPodConditions(in []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range in {
		if c.Type == corev1.PodScheduled || c.Type == corev1.PodReady {
			out = append(out, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message})
		}
	}
	return out
}

// CacheTransform is the transform of every informer of the controller
// manager: StripForCache, then what many cached objects carry unchanged
// shared between them (PodTemplateInterner for the pod templates of pool
// members, MetadataInterner for metadata and status strings). One
// CacheTransform serves all the informer factories, so a namespace or a
// label is shared across kinds too.
type CacheTransform struct {
	templates *PodTemplateInterner
	meta      *MetadataInterner
}

// NewCacheTransform returns a transform with empty interners.
func NewCacheTransform() *CacheTransform {
	return &CacheTransform{templates: NewPodTemplateInterner(), meta: NewMetadataInterner()}
}

// Transform is a cache.TransformFunc.
func (t *CacheTransform) Transform(obj any) (any, error) {
	obj, err := StripForCache(obj)
	if err != nil {
		return obj, err
	}
	switch o := obj.(type) {
	case *agentsv1beta1.Sandbox:
		t.templates.Intern(o)
		t.meta.InternObjectMeta(&o.ObjectMeta)
		t.internConditions(o.Status.Conditions)
		t.meta.Strings(&o.Status.NodeName, (*string)(&o.Spec.OperatingMode))
	case *corev1.Pod:
		t.meta.InternObjectMeta(&o.ObjectMeta)
		o.Status.Conditions = t.meta.PodConditions(o.Status.Conditions)
		t.meta.Strings(&o.Spec.NodeName, (*string)(&o.Status.Phase))
	case interface{ GetObjectMeta() metav1.Object }:
		// Claims, pools, templates and the other kinds: metadata only
		// (this package must not import the extensions API).
		if m, ok := o.GetObjectMeta().(*metav1.ObjectMeta); ok {
			t.meta.InternObjectMeta(m)
		}
	}
	return obj, nil
}

func (t *CacheTransform) internConditions(cs []metav1.Condition) {
	for j := range cs {
		c := &cs[j]
		t.meta.Strings(&c.Type, (*string)(&c.Status), &c.Reason, &c.Message)
	}
}
