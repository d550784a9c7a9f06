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
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kinds and resources of this group, declared once so controllers never
// spell them out (and never reach for the deprecated SchemeGroupVersion).
const (
	SandboxKind = "Sandbox"
)

var (
	// groupVersion is agents.x-k8s.io/v1beta1 as a schema.GroupVersion; register-gen's
	// GroupVersion is the metav1 form, which cannot build kinds and resources.
	groupVersion = schema.GroupVersion{Group: GroupName, Version: "v1beta1"}
	// SandboxGroupVersionKind identifies the Sandbox kind.
	SandboxGroupVersionKind = groupVersion.WithKind(SandboxKind)
	// SandboxesResource identifies the sandboxes resource.
	SandboxesResource = groupVersion.WithResource("sandboxes")
)

// ConditionType is the type of a Sandbox condition.
type ConditionType string

// String returns the condition type as a plain string, the form
// metav1.Condition wants.
func (c ConditionType) String() string { return string(c) }

// Sandbox condition types.
const (
	// SandboxConditionReady is True when the Pod runs and is ready, has an
	// IP, and the Service exists if one is required.
	SandboxConditionReady ConditionType = "Ready"
	// SandboxConditionSuspended tracks operatingMode: Suspended.
	SandboxConditionSuspended ConditionType = "Suspended"
	// SandboxConditionFinished is True once the Pod reached a terminal phase.
	SandboxConditionFinished ConditionType = "Finished"
	// SandboxConditionPodScheduled mirrors the backing Pod's PodScheduled
	// condition while an owned Pod exists.
	SandboxConditionPodScheduled ConditionType = "PodScheduled"
)

// Sandbox condition reasons.
const (
	// Ready reasons.
	SandboxReasonDependenciesReady    = "DependenciesReady"
	SandboxReasonDependenciesNotReady = "DependenciesNotReady"
	SandboxReasonSuspended            = "SandboxSuspended"
	SandboxReasonPodSucceeded         = "PodSucceeded"
	SandboxReasonPodFailed            = "PodFailed"
	SandboxReasonExpired              = "SandboxExpired"
	SandboxReasonMultiplePods         = "MultiplePods"
	SandboxReasonReconcilerError      = "ReconcilerError"

	// Suspended reasons.
	SandboxReasonNotSuspended    = "NotSuspended"
	SandboxReasonPodTerminating  = "PodTerminating"
	SandboxReasonPodNotOwned     = "PodNotOwned"
	SandboxReasonPodTerminated   = "PodTerminated"
	SandboxReasonPodStateUnknown = "PodStateUnknown"
	// Deprecated: superseded by SandboxReasonPodTerminating; accepted on
	// read, never written.
	SandboxReasonPodNotTerminated = "PodNotTerminated"

	// PodScheduled fallback reasons, used when the Pod's own condition gives
	// none.
	SandboxReasonPodScheduled         = "PodScheduled"
	SandboxReasonPodSchedulingUnknown = "PodSchedulingUnknown"
)

// Prefixes reserved for the system: labels and annotations with these
// prefixes are never copied from a tenant's pod template to the Pod.
const (
	ReservedPrefix           = "agents.x-k8s.io/"
	ReservedExtensionsPrefix = "extensions.agents.x-k8s.io/"
)

// Label keys.
const (
	// SandboxNameHashLabel carries NameHash(sandbox name) on the Pod,
	// Service and PVCs; it is the Service selector and status.selector.
	SandboxNameHashLabel = "agents.x-k8s.io/sandbox-name-hash"
	// AdoptableLabel set to "true" lets a Sandbox take ownership of an
	// unowned Pod, Service or PVC with the expected name.
	AdoptableLabel = "agents.x-k8s.io/adoptable"
	// WarmPoolSandboxLabel carries NameHash(pool name) on pool members and
	// their Pods; it is the pool's status.selector.
	WarmPoolSandboxLabel = "agents.x-k8s.io/warm-pool-sandbox"
	// SandboxTemplateRefHashLabel carries NameHash(template name); it is the
	// template NetworkPolicy's pod selector.
	SandboxTemplateRefHashLabel = "agents.x-k8s.io/sandbox-template-ref-hash"
	// SandboxTemplateHashLabel carries the blueprint hash of a pool member,
	// used to detect stale members.
	SandboxTemplateHashLabel = "agents.x-k8s.io/sandbox-template-hash"
	// SandboxPodTemplateHashLabel carries the pod-template-only hash. It is
	// still written for external readers; match members on
	// SandboxTemplateHashLabel.
	SandboxPodTemplateHashLabel = "agents.x-k8s.io/sandbox-pod-template-hash"
	// LaunchTypeLabel is "cold" or "warm".
	LaunchTypeLabel = "agents.x-k8s.io/launch-type"
	// CreatedByLabel names the origin of a resource (go-client,
	// python-client, controller).
	CreatedByLabel = "agents.x-k8s.io/created-by"
	// SandboxIDLabel carries the UID of the claim a Sandbox serves.
	SandboxIDLabel = "agents.x-k8s.io/claim-uid"
)

// Values of LaunchTypeLabel.
const (
	LaunchTypeCold = "cold"
	LaunchTypeWarm = "warm"
)

// Values of CreatedByLabel. Anything else is reported as CreatedByUnknown on
// Pods and in metrics.
const (
	CreatedByGoClient     = "go-client"
	CreatedByPythonClient = "python-client"
	CreatedByController   = "controller"
	CreatedByUnknown      = "unknown"
)

// Annotation keys.
const (
	// PodNameAnnotation names the backing Pod when it may differ from the
	// Sandbox name (an adopted Pod keeps its own name).
	PodNameAnnotation = "agents.x-k8s.io/pod-name"
	// WarmPoolMemberAnnotation is set by the warm pool controller on every
	// member it creates, to the pool's UID, and removed when a claim takes
	// the member over. It is a hint, not a proof (anyone who can create a
	// Sandbox can write it): a pool deletes a stale member that carries it
	// and leaves one that does not alone (docs/controllers/sandboxwarmpool.md).
	WarmPoolMemberAnnotation = "agents.x-k8s.io/warm-pool-member"
	// SandboxTemplateRefAnnotation names the template a Sandbox came from.
	SandboxTemplateRefAnnotation = "agents.x-k8s.io/sandbox-template-ref"
	// PropagatedLabelsAnnotation lists, sorted and comma separated, the label
	// keys copied from the pod template, so later removals can be pruned.
	PropagatedLabelsAnnotation = "agents.x-k8s.io/propagated-labels"
	// PropagatedAnnotationsAnnotation does the same for annotations.
	PropagatedAnnotationsAnnotation = "agents.x-k8s.io/propagated-annotations"
	// SafeToEvictAnnotation is the cluster autoscaler's eviction hint, set to
	// "true" on idle warm Pods.
	SafeToEvictAnnotation = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	// TraceContextAnnotation holds a JSON map of W3C trace headers; never
	// copied to Pods.
	TraceContextAnnotation = "opentelemetry.io/trace-context"
	// StorageMigratedAtAnnotation is patched by the migration script to force
	// a storage rewrite into v1beta1.
	StorageMigratedAtAnnotation = "agents.x-k8s.io/storage-migrated-at"
	// SandboxStateAnnotation holds the full v1alpha1 form of a Sandbox that
	// was written through v1alpha1, so conversion back loses nothing.
	SandboxStateAnnotation = "api.agents.x-k8s.io/v1alpha1-sandbox-state"
	// EnvAnnotation holds a warm claim's environment on its Sandbox, as
	// JSON (pkg/warmenv.Spec): written by the claim controller in the
	// takeover patch, read by the router, never copied to the Pod
	// (docs/design/warm-env.md).
	EnvAnnotation = "agents.x-k8s.io/env"
)

// Wake-on-request and idle auto-suspend knobs (docs/design/idle.md). They
// are annotations, not fields, because the reference has not settled its
// field (kubernetes-sigs/agent-sandbox#968): a field of ours could collide
// with it, and a reference CRD applied over ours would prune it. The reserved
// prefix keeps them off Pods.
const (
	// WakeOnRequestAnnotation set to WakeOnRequestEnabled on a Sandbox lets a
	// request through the router resume it when it is Suspended. On a
	// template or pool, the claim controller copies it to the Sandbox it
	// binds (the pool wins).
	WakeOnRequestAnnotation = "agents.x-k8s.io/wake-on-request"
	// IdleTimeoutAnnotation is a Go duration (1m to 7d): a Sandbox without a
	// request through the router for that long is suspended. Copied from
	// template or pool like WakeOnRequestAnnotation.
	IdleTimeoutAnnotation = "agents.x-k8s.io/idle-timeout"
	// LastActivityAnnotation is the time (RFC 3339, seconds) of the last
	// recorded request through the router. It is metadata so that writing
	// it does not move the generation.
	LastActivityAnnotation = "agents.x-k8s.io/last-activity"
	// IdleSuspendedAtAnnotation is the time (RFC 3339) the Sandbox
	// controller suspended the Sandbox for idleness; a wake removes it.
	IdleSuspendedAtAnnotation = "agents.x-k8s.io/idle-suspended-at"
)

// WakeOnRequestEnabled is the only value of WakeOnRequestAnnotation that opts
// in; anything else (including "True" or "1") leaves wake off, so that a typo
// fails closed.
const WakeOnRequestEnabled = "true"
