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

// Kinds of this group.
const (
	SandboxTemplateKind = "SandboxTemplate"
	SandboxClaimKind    = "SandboxClaim"
	SandboxWarmPoolKind = "SandboxWarmPool"
)

var (
	// groupVersion is extensions.agents.x-k8s.io/v1alpha1 as a schema.GroupVersion; register-gen's
	// GroupVersion is the metav1 form, which cannot build kinds and resources.
	groupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SandboxTemplatesResource identifies the sandboxtemplates resource in this version.
	SandboxTemplatesResource = groupVersion.WithResource("sandboxtemplates")
	// SandboxClaimsResource identifies the sandboxclaims resource in this version.
	SandboxClaimsResource = groupVersion.WithResource("sandboxclaims")
	// SandboxWarmPoolsResource identifies the sandboxwarmpools resource in this version.
	SandboxWarmPoolsResource = groupVersion.WithResource("sandboxwarmpools")
)
