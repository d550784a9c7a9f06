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
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
)

// NetworkPolicyManagement says whether the template controller manages the
// template's shared NetworkPolicy.
// +kubebuilder:validation:Enum=Managed;Unmanaged
type NetworkPolicyManagement string

// The NetworkPolicyManagement values.
const (
	NetworkPolicyManagementManaged   NetworkPolicyManagement = "Managed"
	NetworkPolicyManagementUnmanaged NetworkPolicyManagement = "Unmanaged"
)

// EnvVarsInjectionPolicy says whether claims may set environment variables.
// +kubebuilder:validation:Enum=Allowed;Overrides;Disallowed
type EnvVarsInjectionPolicy string

// The EnvVarsInjectionPolicy values.
const (
	EnvVarsInjectionPolicyAllowed    EnvVarsInjectionPolicy = "Allowed"
	EnvVarsInjectionPolicyOverrides  EnvVarsInjectionPolicy = "Overrides"
	EnvVarsInjectionPolicyDisallowed EnvVarsInjectionPolicy = "Disallowed"
)

// NetworkPolicySpec holds the rules of a template's shared NetworkPolicy.
type NetworkPolicySpec struct {
	// Ingress lists the allowed inbound traffic; empty denies all inbound.
	// +optional
	Ingress []networkingv1.NetworkPolicyIngressRule `json:"ingress,omitempty"`
	// Egress lists the allowed outbound traffic; empty denies all outbound.
	// +optional
	Egress []networkingv1.NetworkPolicyEgressRule `json:"egress,omitempty"`
}

// SandboxTemplateSpec is the v1alpha1 template spec; it has no
// volumeClaimTemplatesPolicy (conversion carries it in an annotation).
type SandboxTemplateSpec struct {
	// PodTemplate describes the Pod of each Sandbox.
	PodTemplate agentsv1alpha1.PodTemplate `json:"podTemplate"`

	// VolumeClaimTemplates are the PVCs created for each Sandbox, each
	// mounted as a Pod volume of the same name.
	// +listType=atomic
	// +optional
	VolumeClaimTemplates []agentsv1alpha1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`

	// NetworkPolicy gives the rules of the template's shared NetworkPolicy;
	// unset means the secure default. Ignored when Unmanaged.
	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// NetworkPolicyManagement: Managed (the controller owns
	// "<template>-network-policy") or Unmanaged (it creates none and
	// deletes one it owns).
	// +kubebuilder:default=Managed
	// +optional
	NetworkPolicyManagement NetworkPolicyManagement `json:"networkPolicyManagement,omitempty"`

	// EnvVarsInjectionPolicy governs claims' spec.env: Allowed adds new
	// names only, Overrides adds and replaces, Disallowed fails a claim
	// that sets env.
	// +kubebuilder:default=Disallowed
	// +optional
	EnvVarsInjectionPolicy EnvVarsInjectionPolicy `json:"envVarsInjectionPolicy,omitempty"`

	// Service manages a headless Service named after each Sandbox, as
	// the Sandbox's spec.service does.
	// +optional
	Service *bool `json:"service,omitempty"`
}

// SandboxTemplate is the deprecated v1alpha1 form of a SandboxTemplate.
//
// +genclient
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=sandboxtemplates,singular=sandboxtemplate,shortName=sandboxtemplate,scope=Namespaced
// +kubebuilder:deprecatedversion:warning="extensions.agents.x-k8s.io/v1alpha1 SandboxTemplate is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxTemplate instead"
type SandboxTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// Spec is the blueprint and its policies.
	Spec SandboxTemplateSpec `json:"spec"`
}

// SandboxTemplateList is a list of v1alpha1 SandboxTemplates.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []SandboxTemplate `json:"items"`
}

// SandboxTemplateRef names a SandboxTemplate in the same namespace. The
// name tag keeps omitempty, as it always had, for byte-identical encoding.
type SandboxTemplateRef struct {
	// Name of the SandboxTemplate.
	// +kubebuilder:validation:Required
	Name string `json:"name,omitempty"`
}

// ShutdownPolicy says what happens when a claim expires.
// +kubebuilder:validation:Enum=Delete;DeleteForeground;Retain
type ShutdownPolicy string

// The ShutdownPolicy values.
const (
	ShutdownPolicyDelete           ShutdownPolicy = "Delete"
	ShutdownPolicyDeleteForeground ShutdownPolicy = "DeleteForeground"
	ShutdownPolicyRetain           ShutdownPolicy = "Retain"
)

// Lifecycle holds a claim's expiry settings.
type Lifecycle struct {
	// ShutdownTime is the instant the claim expires.
	// +optional
	ShutdownTime *metav1.Time `json:"shutdownTime,omitempty"`
	// TTLSecondsAfterFinished expires the claim this many seconds after
	// its Finished condition became True. The earlier of this and
	// ShutdownTime wins.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// ShutdownPolicy is applied on expiry: Delete deletes the claim,
	// DeleteForeground deletes it with foreground propagation, Retain
	// deletes the Sandbox and keeps the claim with Ready=False/ClaimExpired.
	// +kubebuilder:default=Retain
	// +optional
	ShutdownPolicy ShutdownPolicy `json:"shutdownPolicy,omitempty"`
}

// WarmPoolPolicy picks where a v1alpha1 claim's sandbox comes from: "none"
// (always cold), "default" (any pool of the template) or a pool name.
type WarmPoolPolicy string

// The WarmPoolPolicy keywords; any other value names a pool.
const (
	WarmPoolPolicyNone    WarmPoolPolicy = "none"
	WarmPoolPolicyDefault WarmPoolPolicy = "default"
)

// IsSpecificPool reports whether the policy names one pool.
func (p WarmPoolPolicy) IsSpecificPool() bool {
	return p != "" && p != WarmPoolPolicyNone && p != WarmPoolPolicyDefault
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

// SandboxClaimSpec is the v1alpha1 claim spec: it names a template and a
// warm pool policy instead of a pool.
type SandboxClaimSpec struct {
	// TemplateRef names the template of the claim's Sandbox. Stored claims
	// name a pool instead: see warmpool.
	// +kubebuilder:validation:Required
	TemplateRef SandboxTemplateRef `json:"sandboxTemplateRef,omitempty"`

	// Lifecycle sets the claim's expiry; unset means never.
	// +optional
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`

	// WarmPool is where the sandbox comes from: a pool name, or "none" or
	// "default", which both become the template's shadow pool
	// "shadow-pool-<template>" (it must exist; api-migration.md).
	// +kubebuilder:default=default
	// +optional
	WarmPool *WarmPoolPolicy `json:"warmpool,omitempty"`

	// AdditionalPodMetadata is merged into the Sandbox's pod metadata; it
	// may add to the template but not contradict it.
	// +optional
	AdditionalPodMetadata agentsv1alpha1.PodMetadata `json:"additionalPodMetadata,omitempty"`

	// Env lists variables to inject; any entry forces a cold start.
	// +listType=atomic
	// +optional
	Env []EnvVar `json:"env,omitempty"`
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

// SandboxClaimStatus is the observed state of a v1alpha1 SandboxClaim.
type SandboxClaimStatus struct {
	// Conditions: Ready and Finished, mirrored from the bound Sandbox.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// SandboxStatus describes the bound Sandbox.
	// +optional
	SandboxStatus SandboxStatus `json:"sandbox,omitempty"`
}

// SandboxClaim is the deprecated v1alpha1 form of a SandboxClaim.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=sandboxclaims,singular=sandboxclaim,shortName=sandboxclaim,scope=Namespaced
// +kubebuilder:deprecatedversion:warning="extensions.agents.x-k8s.io/v1alpha1 SandboxClaim is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxClaim instead"
type SandboxClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty,omitzero"`

	// Spec is the request.
	Spec SandboxClaimSpec `json:"spec"`
	// Status is the observed state, written by the controller.
	Status SandboxClaimStatus `json:"status,omitempty,omitzero"`
}

// SandboxClaimList is a list of v1alpha1 SandboxClaims.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []SandboxClaim `json:"items"`
}

// SandboxWarmPoolUpdateStrategyType says how stale unclaimed members are
// replaced.
// +kubebuilder:validation:Enum=Recreate;OnReplenish
type SandboxWarmPoolUpdateStrategyType string

// The SandboxWarmPoolUpdateStrategyType values.
const (
	RecreateSandboxWarmPoolUpdateStrategyType    SandboxWarmPoolUpdateStrategyType = "Recreate"
	OnReplenishSandboxWarmPoolUpdateStrategyType SandboxWarmPoolUpdateStrategyType = "OnReplenish"
)

// SandboxWarmPoolUpdateStrategy is the replacement policy for stale members.
type SandboxWarmPoolUpdateStrategy struct {
	// Type is Recreate (stale unclaimed members are deleted at once) or
	// OnReplenish (they stay until deleted or claimed).
	// +kubebuilder:default=OnReplenish
	// +optional
	Type SandboxWarmPoolUpdateStrategyType `json:"type,omitempty"`
}

// SandboxWarmPoolSpec is the v1alpha1 pool spec; replicas is required here.
type SandboxWarmPoolSpec struct {
	// Replicas is the number of ready, unclaimed sandboxes to keep; 0
	// makes a cold-start-only pool. Target of the scale subresource.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`

	// TemplateRef names the template used for members and for cold starts
	// of claims on this pool.
	// +kubebuilder:validation:Required
	TemplateRef SandboxTemplateRef `json:"sandboxTemplateRef,omitempty"`

	// UpdateStrategy is the replacement policy for stale unclaimed members;
	// unset behaves as OnReplenish.
	// +optional
	UpdateStrategy *SandboxWarmPoolUpdateStrategy `json:"updateStrategy,omitempty"`
}

// SandboxWarmPoolStatus is the observed state of a v1alpha1 pool.
type SandboxWarmPoolStatus struct {
	// Replicas counts active members: not terminating, not pending deletion.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas counts active members with Ready=True.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Selector matches the pool's Sandboxes and their Pods.
	// +optional
	Selector string `json:"selector,omitempty"`
}

// SandboxWarmPool is the deprecated v1alpha1 form of a SandboxWarmPool.
//
// +genclient
// +genclient:method=GetScale,verb=get,subresource=scale,result=k8s.io/api/autoscaling/v1.Scale
// +genclient:method=UpdateScale,verb=update,subresource=scale,input=k8s.io/api/autoscaling/v1.Scale,result=k8s.io/api/autoscaling/v1.Scale
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:path=sandboxwarmpools,singular=sandboxwarmpool,shortName=swp,scope=Namespaced
// +kubebuilder:printcolumn:name="Ready",type="integer",JSONPath=".status.readyReplicas"
// +kubebuilder:printcolumn:name="Desired",type="integer",JSONPath=".spec.replicas"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:deprecatedversion:warning="extensions.agents.x-k8s.io/v1alpha1 SandboxWarmPool is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxWarmPool instead"
type SandboxWarmPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state.
	Spec SandboxWarmPoolSpec `json:"spec"`
	// Status is the observed state, written by the controller.
	Status SandboxWarmPoolStatus `json:"status,omitempty"`
}

// SandboxWarmPoolList is a list of v1alpha1 SandboxWarmPools.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type SandboxWarmPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []SandboxWarmPool `json:"items"`
}
