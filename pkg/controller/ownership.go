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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ControllerOfKind returns the controller reference of obj when it points
// at the given group and kind, whatever its version: objects written by
// older controllers still reference v1alpha1, and Kubernetes never
// rewrites ownerReference apiVersions.
func ControllerOfKind(obj metav1.Object, gk schema.GroupKind) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.Kind != gk.Kind {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != gk.Group {
		return nil
	}
	return ref
}

// IsControlledByUID reports whether obj's controller reference names uid.
func IsControlledByUID(obj, owner metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == owner.GetUID()
}

// ControllerGroup returns the API group of obj's controller, or "" when it
// has none.
func ControllerGroup(obj metav1.Object) (group, kind string) {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return "", ""
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", ref.Kind
	}
	return gv.Group, ref.Kind
}
