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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// ShutdownPolicy says what happens when a claim expires.
// +kubebuilder:validation:Enum=Delete;DeleteForeground;Retain
type ShutdownPolicy string

const (
	// ShutdownPolicyDelete deletes the claim; its Sandbox follows by garbage
	// collection.
	ShutdownPolicyDelete ShutdownPolicy = "Delete"
	// ShutdownPolicyDeleteForeground deletes the claim with foreground
	// propagation, so it lingers until its Sandbox and Pod are gone.
	ShutdownPolicyDeleteForeground ShutdownPolicy = "DeleteForeground"
	// ShutdownPolicyRetain deletes the Sandbox and keeps the claim with
	// Ready=False/ClaimExpired.
	ShutdownPolicyRetain ShutdownPolicy = "Retain"
)

// Lifecycle holds a claim's expiry settings. The claim controller enforces
// them; they are never copied to the Sandbox.
type Lifecycle struct {
	// ShutdownTime is the instant the claim expires.
	// +optional
	ShutdownTime *metav1.Time `json:"shutdownTime,omitempty"`

	// TTLSecondsAfterFinished expires the claim this many seconds after its
	// Finished condition became True. The earlier of this and ShutdownTime
	// wins.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// ShutdownPolicy is applied on expiry.
	// +kubebuilder:default=Retain
	// +optional
	ShutdownPolicy ShutdownPolicy `json:"shutdownPolicy,omitempty"`
}

// SandboxWarmPoolRef names a SandboxWarmPool in the claim's namespace.
type SandboxWarmPoolRef struct {
	// Name of the SandboxWarmPool.
	Name string `json:"name"`
}

// EnvVar is a literal environment variable injected into one container.
type EnvVar struct {
	// Name of the variable.
	Name string `json:"name"`

	// Value of the variable; may be empty.
	Value string `json:"value"`

	// ContainerName is the target container (init containers included);
	// unset means the first container.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// SandboxClaimSpec is a request for one Sandbox.
type SandboxClaimSpec struct {
	// WarmPoolRef names the pool to take a sandbox from; the pool's template
	// is used when none is ready.
	WarmPoolRef SandboxWarmPoolRef `json:"warmPoolRef"`

	// Lifecycle sets the claim's expiry; unset means never.
	// +optional
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`

	// AdditionalPodMetadata is merged into the Sandbox's pod metadata; it
	// may add to the template but not contradict it.
	// +optional
	AdditionalPodMetadata agentsv1beta1.PodMetadata `json:"additionalPodMetadata,omitempty"`

	// Env lists variables to inject; any entry forces a cold start.
	// +listType=atomic
	// +optional
	Env []EnvVar `json:"env,omitempty"`

	// VolumeClaimTemplates adds or overrides the template's PVC templates,
	// as the template's policy allows; any entry forces a cold start.
	// +listType=atomic
	// +optional
	VolumeClaimTemplates []agentsv1beta1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`
}

// SandboxStatus describes the Sandbox bound to a claim.
type SandboxStatus struct {
	// Name of the bound Sandbox.
	// +optional
	Name string `json:"name,omitempty"`

	// PodIPs mirrors the Sandbox's status.podIPs.
	// +optional
	PodIPs []string `json:"podIPs,omitempty"`
}

// SandboxClaimStatus is the observed state of a SandboxClaim.
type SandboxClaimStatus struct {
	// Conditions: Ready and Finished, mirrored from the bound Sandbox.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// SandboxStatus describes the bound Sandbox.
	// +optional
	SandboxStatus SandboxStatus `json:"sandbox,omitempty"`
}

// SandboxClaim requests one Sandbox from a warm pool, adopting a ready
// member when there is one and creating a fresh Sandbox otherwise.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=sandboxclaims,singular=sandboxclaim,shortName=sandboxclaim,scope=Namespaced
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Sandbox",type="string",JSONPath=".status.sandbox.name"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type SandboxClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// Spec is the desired state.
	Spec SandboxClaimSpec `json:"spec"`
	// Status is the observed state, written by the controller.
	Status SandboxClaimStatus `json:"status,omitempty,omitzero"`
}

// SandboxClaimList is a list of SandboxClaims.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []SandboxClaim `json:"items"`
}
