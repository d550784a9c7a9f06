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

package v1beta1

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
// Name is the base of the claim name: the PVC is named "<name>-<sandbox>".
type EmbeddedObjectMetadata struct {
	// Name is the base name of the claim and the name of the Pod volume that
	// mounts it.
	// +optional
	Name string `json:"name,omitempty"`

	// Labels copied onto the created PersistentVolumeClaim.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations copied onto the created PersistentVolumeClaim.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PodTemplate describes the Pod that backs a Sandbox. The spec is used as
// given; the metadata carries only labels and annotations.
//
// Field order (spec, then metadata) is part of the wire contract: the
// deprecated pod-template hash is computed over this struct's JSON encoding.
type PodTemplate struct {
	// Spec of the Pod.
	Spec corev1.PodSpec `json:"spec"`

	// ObjectMeta holds the labels and annotations put on the Pod.
	// +optional
	ObjectMeta PodMetadata `json:"metadata"`
}

// PersistentVolumeClaimTemplate describes one PVC created for each Sandbox,
// StatefulSet style, and mounted as a Pod volume of the same name.
type PersistentVolumeClaimTemplate struct {
	// EmbeddedObjectMetadata names the claim and gives its labels and
	// annotations.
	// +optional
	EmbeddedObjectMetadata `json:"metadata"`

	// Spec of the PersistentVolumeClaim, copied verbatim.
	Spec corev1.PersistentVolumeClaimSpec `json:"spec"`
}

// SandboxOperatingMode is the desired state of a Sandbox's backing Pod.
// +kubebuilder:validation:Enum=Running;Suspended
type SandboxOperatingMode string

const (
	// SandboxOperatingModeRunning keeps a backing Pod (and Service if asked).
	SandboxOperatingModeRunning SandboxOperatingMode = "Running"
	// SandboxOperatingModeSuspended deletes the Pod but keeps the Sandbox,
	// its PersistentVolumeClaims and its Service.
	SandboxOperatingModeSuspended SandboxOperatingMode = "Suspended"
)

// ShutdownPolicy says what happens to a Sandbox object when it expires.
// +kubebuilder:validation:Enum=Delete;Retain
type ShutdownPolicy string

const (
	// ShutdownPolicyDelete deletes the Sandbox on expiry.
	ShutdownPolicyDelete ShutdownPolicy = "Delete"
	// ShutdownPolicyRetain keeps the Sandbox object, with its status cleared
	// and Ready=False/SandboxExpired.
	ShutdownPolicyRetain ShutdownPolicy = "Retain"
)

// Lifecycle holds the expiry settings of a Sandbox. It is inlined into the
// spec, so its fields appear directly under spec.
type Lifecycle struct {
	// ShutdownTime is the absolute instant at which the Sandbox expires.
	// Unset means it never expires.
	// +optional
	ShutdownTime *metav1.Time `json:"shutdownTime,omitempty"`

	// ShutdownPolicy is applied to the Sandbox object on expiry. The Pod and
	// Service are always deleted on expiry. No effect without ShutdownTime.
	// +kubebuilder:default=Retain
	// +optional
	ShutdownPolicy *ShutdownPolicy `json:"shutdownPolicy,omitempty"`
}

// SandboxBlueprint is the workload description shared by Sandbox and
// SandboxTemplate. It leaves out runtime-only fields (operating mode,
// lifecycle).
//
// Field order is part of the wire contract: warm pools hash this struct's
// JSON encoding to detect stale members.
type SandboxBlueprint struct {
	// PodTemplate describes the Pod to run.
	PodTemplate PodTemplate `json:"podTemplate"`

	// VolumeClaimTemplates are the PVCs created for each Sandbox, each
	// mounted as a Pod volume of the same name.
	// +listType=atomic
	// +optional
	VolumeClaimTemplates []PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`

	// Service manages a headless Service named after the Sandbox: true
	// creates (or adopts) and keeps it, false deletes an owned one, unset
	// never creates one but keeps one the Sandbox already owns.
	// +optional
	Service *bool `json:"service,omitempty"`
}

// SandboxSpec is the desired state of a Sandbox.
// +kubebuilder:validation:XValidation:rule="has(self.volumeClaimTemplates) == has(oldSelf.volumeClaimTemplates) && (!has(self.volumeClaimTemplates) || self.volumeClaimTemplates == oldSelf.volumeClaimTemplates)",message="volumeClaimTemplates is immutable"
type SandboxSpec struct {
	SandboxBlueprint `json:",inline"`
	Lifecycle        `json:",inline"`

	// OperatingMode is the desired state: Running keeps a backing Pod,
	// Suspended deletes it and keeps everything else. The observed state is
	// reported by conditions.
	// +kubebuilder:default=Running
	// +optional
	OperatingMode SandboxOperatingMode `json:"operatingMode,omitempty"`
}

// SandboxStatus is the observed state of a Sandbox.
type SandboxStatus struct {
	// ServiceFQDN is "<service>.<namespace>.svc.<cluster domain>", empty when
	// no Service is tracked.
	// +optional
	ServiceFQDN string `json:"serviceFQDN,omitempty"`

	// Service is the name of the headless Service, if any.
	// +optional
	Service string `json:"service,omitempty"`

	// Conditions: Ready, Suspended, PodScheduled and Finished.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LabelSelector selects the backing Pod:
	// "agents.x-k8s.io/sandbox-name-hash=<NameHash(name)>".
	// +optional
	LabelSelector string `json:"selector,omitempty"`

	// PodIPs are the IPs of the owned backing Pod.
	// +optional
	PodIPs []string `json:"podIPs,omitempty"`

	// NodeName is the node of the owned backing Pod.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
}

// Sandbox is one stateful, singleton, isolated workload with a stable
// identity: a Pod, its PersistentVolumeClaims and optionally a headless
// Service.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=sandboxes,singular=sandbox,shortName=sandbox,scope=Namespaced
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type Sandbox struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// Spec is the desired state.
	Spec SandboxSpec `json:"spec"`
	// Status is the observed state, written by the controller.
	Status SandboxStatus `json:"status,omitempty,omitzero"`
}

// SandboxList is a list of Sandboxes.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Sandbox `json:"items"`
}
