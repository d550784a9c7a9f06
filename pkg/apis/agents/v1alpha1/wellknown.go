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

import "k8s.io/apimachinery/pkg/runtime/schema"

// SandboxKind is the kind of a Sandbox.
const SandboxKind = "Sandbox"

var (
	// groupVersion is agents.x-k8s.io/v1alpha1 as a schema.GroupVersion; register-gen's
	// GroupVersion is the metav1 form, which cannot build kinds and resources.
	groupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}
	// SandboxesResource identifies the sandboxes resource in this version.
	SandboxesResource = groupVersion.WithResource("sandboxes")
)

// The v1alpha1 package declares the smaller set of names it always had;
// v1beta1 holds the complete one.
const (
	SandboxConditionSuspended = "Suspended"
	SandboxConditionReady     = "Ready"
	SandboxConditionFinished  = "Finished"

	SandboxReasonPodTerminated        = "PodTerminated"
	SandboxReasonPodNotTerminated     = "PodNotTerminated"
	SandboxReasonDependenciesReady    = "DependenciesReady"
	SandboxReasonDependenciesNotReady = "DependenciesNotReady"
	SandboxReasonSuspended            = "SandboxSuspended"
	SandboxReasonPodSucceeded         = "PodSucceeded"
	SandboxReasonPodFailed            = "PodFailed"
	SandboxReasonExpired              = "SandboxExpired"

	PodNameAnnotation               = "agents.x-k8s.io/pod-name"
	SandboxTemplateRefAnnotation    = "agents.x-k8s.io/sandbox-template-ref"
	SandboxPodTemplateHashLabel     = "agents.x-k8s.io/sandbox-pod-template-hash"
	PropagatedLabelsAnnotation      = "agents.x-k8s.io/propagated-labels"
	PropagatedAnnotationsAnnotation = "agents.x-k8s.io/propagated-annotations"
)
