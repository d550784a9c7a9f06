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

// An OwnerRule names labels and annotations an owner kind writes on the
// objects it controls that those objects' children carry while it does (a
// warm pool's Sandbox hands its pool label to its Pod). The owner's side
// declares the rule and the child's controller applies it, so that
// controller needs no import of the owner's API: the dependency points
// from the owner to the core, never back. Only the controller reference
// decides, never the labels themselves, since whoever creates the object
// can write those.
type OwnerRule struct {
	// Owner is the group and kind of the controller reference; an empty
	// Kind matches every kind of the group. Versions are ignored (old
	// references still name v1alpha1).
	Owner schema.GroupKind
	// Labels are the keys of the object's labels its children carry, with
	// the object's value.
	Labels []string
	// Annotations are annotations the children carry when the object has
	// exactly this value for the key.
	Annotations map[string]string
	// QuietCreates: the owner reports the objects it creates itself, in
	// batches, so no Event is sent for each of their children's creation
	// either (it would be one more API write per object, read by nobody).
	QuietCreates bool
}

// OwnerRules are the rules of every owner kind; several may match one
// controller reference (a group-wide rule and a kind's own).
type OwnerRules []OwnerRule

func (r OwnerRule) matches(obj metav1.Object) bool {
	group, kind := ControllerGroup(obj)
	return metav1.GetControllerOfNoCopy(obj) != nil && group == r.Owner.Group && (r.Owner.Kind == "" || kind == r.Owner.Kind)
}

// Labels returns every label key a rule names, with the value obj's
// children should carry: obj's own when a rule matching obj's controller
// names the key, else "" (the child must not carry it: its owner changed,
// or obj was labelled by someone the rules do not trust).
func (rs OwnerRules) Labels(obj metav1.Object) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		for _, k := range r.Labels {
			if _, seen := out[k]; !seen {
				out[k] = ""
			}
		}
	}
	for _, r := range rs {
		if !r.matches(obj) {
			continue
		}
		for _, k := range r.Labels {
			out[k] = obj.GetLabels()[k]
		}
	}
	return out
}

// Annotations returns the annotations obj's children should carry from
// the rules matching obj's controller, nil when none.
func (rs OwnerRules) Annotations(obj metav1.Object) map[string]string {
	var out map[string]string
	for _, r := range rs {
		if !r.matches(obj) {
			continue
		}
		for k, v := range r.Annotations {
			if obj.GetAnnotations()[k] != v {
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// OwnerKind returns the kind of obj's controller when a rule names that
// kind itself (not only its group), else "".
func (rs OwnerRules) OwnerKind(obj metav1.Object) string {
	for _, r := range rs {
		if r.Owner.Kind != "" && r.matches(obj) {
			return r.Owner.Kind
		}
	}
	return ""
}

// QuietCreates reports whether a rule matching obj's controller asks for
// no per-child create Events.
func (rs OwnerRules) QuietCreates(obj metav1.Object) bool {
	for _, r := range rs {
		if r.QuietCreates && r.matches(obj) {
			return true
		}
	}
	return false
}
