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

// Package v1 is a second fixture group that reuses a type of the first.
//
// +groupName=b.example.com
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	av1 "example.com/fixture/testdata/src/a/v1"
)

// GadgetSpec is the desired state.
type GadgetSpec struct {
	// Part is the one part of a gadget.
	Part av1.Part `json:"part"`
}

// Gadget is a deprecated, scalable fixture kind.
//
// +genclient
// +kubebuilder:object:root=true
type Gadget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state.
	Spec GadgetSpec `json:"spec"`
}
