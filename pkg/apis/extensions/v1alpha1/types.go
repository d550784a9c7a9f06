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
	// +optional
	Ingress []networkingv1.NetworkPolicyIngressRule `json:"ingress,omitempty"`
	// +optional
	Egress []networkingv1.NetworkPolicyEgressRule `json:"egress,omitempty"`
}

// SandboxTemplateSpec is the v1alpha1 template spec; it has no
// volumeClaimTemplatesPolicy (conversion carries it in an annotation).
type SandboxTemplateSpec struct {
	PodTemplate agentsv1alpha1.PodTemplate `json:"podTemplate"`

	// +listType=atomic
	// +optional
	VolumeClaimTemplates []agentsv1alpha1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`

	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// +kubebuilder:default=Managed
	// +optional
	NetworkPolicyManagement NetworkPolicyManagement `json:"networkPolicyManagement,omitempty"`

	// +kubebuilder:default=Disallowed
	// +optional
	EnvVarsInjectionPolicy EnvVarsInjectionPolicy `json:"envVarsInjectionPolicy,omitempty"`

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
	// +optional
	ShutdownTime *metav1.Time `json:"shutdownTime,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
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
	Name  string `json:"name"`
	Value string `json:"value"`
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// SandboxClaimSpec is the v1alpha1 claim spec: it names a template and a
// warm pool policy instead of a pool.
type SandboxClaimSpec struct {
	// +kubebuilder:validation:Required
	TemplateRef SandboxTemplateRef `json:"sandboxTemplateRef,omitempty"`

	// +optional
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`

	// +kubebuilder:default=default
	// +optional
	WarmPool *WarmPoolPolicy `json:"warmpool,omitempty"`

	// +optional
	AdditionalPodMetadata agentsv1alpha1.PodMetadata `json:"additionalPodMetadata,omitempty"`

	// +listType=atomic
	// +optional
	Env []EnvVar `json:"env,omitempty"`
}

// SandboxStatus describes the Sandbox bound to a claim.
type SandboxStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	PodIPs []string `json:"podIPs,omitempty"`
}

// SandboxClaimStatus is the observed state of a v1alpha1 SandboxClaim.
type SandboxClaimStatus struct {
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
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

	Spec   SandboxClaimSpec   `json:"spec"`
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
	// +kubebuilder:default=OnReplenish
	// +optional
	Type SandboxWarmPoolUpdateStrategyType `json:"type,omitempty"`
}

// SandboxWarmPoolSpec is the v1alpha1 pool spec; replicas is required here.
type SandboxWarmPoolSpec struct {
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`

	// +kubebuilder:validation:Required
	TemplateRef SandboxTemplateRef `json:"sandboxTemplateRef,omitempty"`

	// +optional
	UpdateStrategy *SandboxWarmPoolUpdateStrategy `json:"updateStrategy,omitempty"`
}

// SandboxWarmPoolStatus is the observed state of a v1alpha1 pool.
type SandboxWarmPoolStatus struct {
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
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

	Spec   SandboxWarmPoolSpec   `json:"spec"`
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
