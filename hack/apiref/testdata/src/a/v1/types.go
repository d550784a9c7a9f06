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

// Package v1 is a fixture for the apiref test: one kind with every shape
// the generator renders.
//
// +groupName=a.example.com
package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode is how a widget runs.
// +kubebuilder:validation:Enum=Fast;Slow
type Mode string

const (
	// ModeFast runs it fast.
	ModeFast Mode = "Fast"
	// ModeSlow runs it <slowly>.
	ModeSlow Mode = "Slow"
)

// Common is inlined into the spec.
type Common struct {
	// Mode picks the speed.
	// +kubebuilder:default=Fast
	// +optional
	Mode Mode `json:"mode,omitempty"`
}

// Part is shared by the spec, the status and another group.
type Part struct {
	// Name of the part; must be a | pipe-free "<name>".
	Name string `json:"name"`
}

// WidgetSpec is the desired state.
// +kubebuilder:validation:XValidation:rule="self.count >= 0 || self.count == oldSelf.count",message="count may not go negative"
type WidgetSpec struct {
	Common `json:",inline"`

	// Count of parts.
	//
	// A second paragraph.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Count int32 `json:"count"`

	// Parts to build from.
	// +optional
	Parts []Part `json:"parts,omitempty"`

	// Labels to add.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Until is when it stops.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`

	// Pod to run.
	// +optional
	Pod *corev1.PodSpec `json:"pod,omitempty"`

	unexported string
}

// WidgetStatus is the observed state.
type WidgetStatus struct {
	// Parts built so far.
	// +optional
	Parts []Part `json:"parts,omitempty"`
}

// Widget is a fixture kind.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state.
	Spec WidgetSpec `json:"spec"`
	// Status is the observed state.
	Status WidgetStatus `json:"status,omitempty"`
}

// WidgetList is not documented: it has no +genclient.
//
// +kubebuilder:object:root=true
type WidgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Widget `json:"items"`
}
