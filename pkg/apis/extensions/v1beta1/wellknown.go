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

import "k8s.io/apimachinery/pkg/runtime/schema"

// Kinds of this group.
const (
	SandboxTemplateKind = "SandboxTemplate"
	SandboxClaimKind    = "SandboxClaim"
	SandboxWarmPoolKind = "SandboxWarmPool"
)

var (
	// groupVersion is extensions.agents.x-k8s.io/v1beta1 as a schema.GroupVersion; register-gen's
	// GroupVersion is the metav1 form, which cannot build kinds and resources.
	groupVersion = schema.GroupVersion{Group: GroupName, Version: "v1beta1"}

	// SandboxTemplateGroupVersionKind identifies the SandboxTemplate kind.
	SandboxTemplateGroupVersionKind = groupVersion.WithKind(SandboxTemplateKind)
	// SandboxClaimGroupVersionKind identifies the SandboxClaim kind.
	SandboxClaimGroupVersionKind = groupVersion.WithKind(SandboxClaimKind)
	// SandboxWarmPoolGroupVersionKind identifies the SandboxWarmPool kind.
	SandboxWarmPoolGroupVersionKind = groupVersion.WithKind(SandboxWarmPoolKind)

	// SandboxTemplatesResource identifies the sandboxtemplates resource.
	SandboxTemplatesResource = groupVersion.WithResource("sandboxtemplates")
	// SandboxClaimsResource identifies the sandboxclaims resource.
	SandboxClaimsResource = groupVersion.WithResource("sandboxclaims")
	// SandboxWarmPoolsResource identifies the sandboxwarmpools resource.
	SandboxWarmPoolsResource = groupVersion.WithResource("sandboxwarmpools")
)

// Informer index keys.
const (
	// WarmPoolRefField indexes claims by the pool they name.
	WarmPoolRefField = ".spec.warmPoolRef.name"
	// TemplateRefField indexes pools by the template they name.
	TemplateRefField = ".spec.sandboxTemplateRef.name"
)

// SandboxClaim condition reasons (the Ready condition; Finished mirrors the
// Sandbox's own reasons).
const (
	ClaimExpiredReason         = "ClaimExpired"
	ClaimReasonSandboxExpired  = "SandboxExpired"
	ClaimReasonSandboxNotReady = "SandboxNotReady"
	// ClaimReasonSandboxSuspended: the Sandbox is suspended
	// (operatingMode Suspended, by hand or by idle auto-suspend).
	ClaimReasonSandboxSuspended     = "SandboxSuspended"
	ClaimReasonSandboxMissing       = "SandboxMissing"
	ClaimReasonWarmPoolNotFound     = "WarmPoolNotFound"
	ClaimReasonTemplateNotFound     = "TemplateNotFound"
	ClaimReasonInvalidMetadata      = "InvalidMetadata"
	ClaimReasonEnvVarsRejected      = "EnvVarsInjectionRejected"
	ClaimReasonVolumeClaimTemplates = "VolumeClaimTemplatesError"
	ClaimReasonAdoptionConflict     = "AdoptionConflict"
	ClaimReasonSandboxCreatePending = "SandboxCreatePending"
	ClaimReasonReconcilerError      = "ReconcilerError"
)

// ClaimConditionWarmStart says whether the claim got a warm pool member
// and, when not, why (docs/design/warm-env.md). Set once, with the claim's
// first status after it has a Sandbox.
const ClaimConditionWarmStart = "WarmStart"

// WarmStart reasons. The cold ones the claim caused also name the
// ColdStart Event.
const (
	WarmStartReasonWarmPoolMember = "WarmPoolMember"
	// ColdReasonWarmEnvNotEnabled: the claim sets env and its template has
	// no WarmEnvPortAnnotation.
	ColdReasonWarmEnvNotEnabled = "WarmEnvNotEnabled"
	// ColdReasonEnvTargetsOtherContainer: a variable targets a container
	// other than the first regular one, which only a new Pod can give it.
	ColdReasonEnvTargetsOtherContainer = "EnvTargetsOtherContainer"
	// ColdReasonEnvTooLarge: the env is over 8 KiB as JSON.
	ColdReasonEnvTooLarge = "EnvTooLarge"
	// ColdReasonVolumesNeedColdStart: the claim sets volumeClaimTemplates,
	// which pool members lack.
	ColdReasonVolumesNeedColdStart = "VolumesNeedColdStart"
	// ColdReasonNoReadyMember: the pool had no member to take; not the
	// claim's doing, so no Event.
	ColdReasonNoReadyMember = "NoReadyMember"
)

// ClaimEventColdStart is the Event reason of a cold start the claim caused.
const ClaimEventColdStart = "ColdStart"

// Pool event reasons.
const (
	WarmPoolNotProgressingReason = "WarmPoolNotProgressing"
	WarmPoolProgressingReason    = "WarmPoolProgressing"
)

// Annotation keys on SandboxClaims and SandboxWarmPools.
const (
	// AssignedSandboxNameAnnotation names the warm Sandbox assigned to a
	// claim; written before the Sandbox is taken over, so an interrupted
	// adoption can resume.
	AssignedSandboxNameAnnotation = "agents.x-k8s.io/sandbox-name"
	// DeprecatedAssignedSandboxNameLabel is the older label form of the same
	// key; read as a fallback and migrated to the annotation.
	DeprecatedAssignedSandboxNameLabel = AssignedSandboxNameAnnotation

	ControllerFirstObservedAtAnnotation = "agents.x-k8s.io/controller-first-observed-at"
	ClaimFirstReadyAtAnnotation         = "agents.x-k8s.io/claim-first-ready-at"
	ClientFirstRequestedAtAnnotation    = "agents.x-k8s.io/client-first-requested-at"
	WebhookFirstObservedAtAnnotation    = "agents.x-k8s.io/webhook-first-observed-at"
	// CreationLatencyRecordedAnnotation is declared for compatibility; no
	// controller writes it.
	CreationLatencyRecordedAnnotation = "agents.x-k8s.io/creation-latency-recorded"

	MigrationShadowAnnotation         = "agents.x-k8s.io/migration-shadow"
	MigrationSourceTemplateAnnotation = "agents.x-k8s.io/migration-source-template"

	// State annotations written by conversion from v1alpha1 (section 11 of
	// the API spec); the claim's holds the full v1alpha1 object.
	SandboxClaimStateAnnotation    = "api.agents.x-k8s.io/v1alpha1-sandboxclaim-state"
	SandboxTemplateStateAnnotation = "api.agents.x-k8s.io/v1alpha1-sandboxtemplate-state"
	SandboxWarmPoolStateAnnotation = "api.agents.x-k8s.io/v1alpha1-sandboxwarmpool-state"
	// VolumeClaimTemplatesPolicyAnnotation carries the v1beta1-only
	// volumeClaimTemplatesPolicy on the v1alpha1 view of a template.
	VolumeClaimTemplatesPolicyAnnotation = "api.agents.x-k8s.io/v1beta1-volume-claim-templates-policy"
	// WarmEnvPortAnnotation, on a SandboxTemplate, opts it in to warm
	// claims with env: its value is the port on which the first container
	// runs a sandbox-runtime that honours X-Sandbox-Env
	// (docs/design/warm-env.md).
	WarmEnvPortAnnotation = "agents.x-k8s.io/warm-env-port"

	// UnknownFirstReadySentinel is the value of ClaimFirstReadyAtAnnotation
	// when the first Ready time could not be determined.
	UnknownFirstReadySentinel = "unknown"
)

// ShadowPoolPrefix names the zero-replica pools that give v1alpha1 claims
// without a specific pool somewhere to resolve: "shadow-pool-<template>".
const ShadowPoolPrefix = "shadow-pool-"
