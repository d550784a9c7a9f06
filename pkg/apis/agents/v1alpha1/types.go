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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodMetadata is the subset of object metadata a template may set on a Pod.
type PodMetadata struct {
	// Labels to put on the Pod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations to put on the Pod.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// EmbeddedObjectMetadata is the metadata of a PersistentVolumeClaimTemplate.
type EmbeddedObjectMetadata struct {
	// Name is the base name of the claim ("<name>-<sandbox>") and the name
	// of the Pod volume that mounts it.
	// +optional
	Name string `json:"name,omitempty"`
	// Labels copied onto the created PersistentVolumeClaim.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations copied onto the created PersistentVolumeClaim.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PodTemplate describes the Pod that backs a Sandbox.
type PodTemplate struct {
	// Spec of the Pod.
	Spec corev1.PodSpec `json:"spec"`
	// ObjectMeta holds the labels and annotations put on the Pod.
	// +optional
	ObjectMeta PodMetadata `json:"metadata"`
}

// PersistentVolumeClaimTemplate describes one PVC created for each Sandbox.
type PersistentVolumeClaimTemplate struct {
	// EmbeddedObjectMetadata names the claim and gives its labels and
	// annotations.
	// +optional
	EmbeddedObjectMetadata `json:"metadata"`
	// Spec of the PersistentVolumeClaim, copied verbatim.
	Spec corev1.PersistentVolumeClaimSpec `json:"spec"`
}

// ShutdownPolicy says what happens to a Sandbox object when it expires.
// +kubebuilder:validation:Enum=Delete;Retain
type ShutdownPolicy string

// The ShutdownPolicy values.
const (
	ShutdownPolicyDelete ShutdownPolicy = "Delete"
	ShutdownPolicyRetain ShutdownPolicy = "Retain"
)

// Lifecycle holds the expiry settings of a Sandbox.
type Lifecycle struct {
	// ShutdownTime is the absolute instant at which the Sandbox expires.
	// Unset means it never expires.
	// +optional
	ShutdownTime *metav1.Time `json:"shutdownTime,omitempty"`
	// ShutdownPolicy is applied to the Sandbox object on expiry: Delete
	// deletes it, Retain keeps it with Ready=False/SandboxExpired. The Pod
	// and Service are always deleted on expiry.
	// +kubebuilder:default=Retain
	// +optional
	ShutdownPolicy *ShutdownPolicy `json:"shutdownPolicy,omitempty"`
}

// SandboxSpec is the desired state of a v1alpha1 Sandbox.
type SandboxSpec struct {
	// PodTemplate describes the Pod to run.
	PodTemplate PodTemplate `json:"podTemplate"`

	// VolumeClaimTemplates are the PVCs created for each Sandbox, each
	// mounted as a Pod volume of the same name.
	// +listType=atomic
	// +optional
	VolumeClaimTemplates []PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`

	Lifecycle `json:",inline"`

	// Replicas is 1 for running and 0 for suspended; v1beta1 replaced it
	// with operatingMode.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Service manages a headless Service named after the Sandbox: true
	// creates (or adopts) and keeps it, false deletes an owned one, unset
	// never creates one but keeps one the Sandbox already owns.
	// +optional
	Service *bool `json:"service,omitempty"`
}

// SandboxStatus is the observed state of a v1alpha1 Sandbox.
type SandboxStatus struct {
	// ServiceFQDN is "<service>.<namespace>.svc.<cluster domain>", empty
	// when no Service is tracked.
	// +optional
	ServiceFQDN string `json:"serviceFQDN,omitempty"`
	// Service is the name of the headless Service, if any.
	// +optional
	Service string `json:"service,omitempty"`
	// Conditions: Ready, Suspended, PodScheduled and Finished.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Replicas is the scale subresource's status path; only conversion
	// produces it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// LabelSelector selects the backing Pod (and is the scale
	// subresource's selector).
	// +optional
	LabelSelector string `json:"selector,omitempty"`
	// PodIPs are the IPs of the owned backing Pod.
	// +optional
	PodIPs []string `json:"podIPs,omitempty"`
}

// Sandbox is the deprecated v1alpha1 form of a Sandbox.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:path=sandboxes,singular=sandbox,shortName=sandbox,scope=Namespaced
// +kubebuilder:deprecatedversion:warning="agents.x-k8s.io/v1alpha1 Sandbox is deprecated; use agents.x-k8s.io/v1beta1 Sandbox instead"
type Sandbox struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// Spec is the desired state.
	Spec SandboxSpec `json:"spec"`
	// Status is the observed state, written by the controller.
	Status SandboxStatus `json:"status,omitempty,omitzero"`
}

// SandboxList is a list of v1alpha1 Sandboxes.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Sandbox `json:"items"`
}
