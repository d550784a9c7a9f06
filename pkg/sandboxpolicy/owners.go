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

package sandboxpolicy

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// SandboxOwners are the Sandbox controller's owner rules for the
// extensions (its Options.Owners): the labels and annotations that pools
// and claims write on the Sandboxes they control and that the Sandbox's
// Pod carries while they do (spec: api.md 9.3; docs/controllers/sandbox.md).
// A Sandbox that carries them without such a controller, one a user made,
// passes none on.
func SandboxOwners() controller.OwnerRules {
	return controller.OwnerRules{
		{
			// Every extensions kind: the template's hash, which the
			// template's NetworkPolicy selects Pods by.
			Owner:  schema.GroupKind{Group: extv1beta1.GroupName},
			Labels: []string{agentsv1beta1.SandboxTemplateRefHashLabel},
		},
		{
			// A warm pool: membership (the router keeps unclaimed members
			// off its name index), and the autoscaler's hint that an idle
			// member's Pod may be evicted (newMember sets it on the
			// Sandbox; a claim taking the member removes it). The pool
			// reports its creates in batches.
			Owner:        extv1beta1.SandboxWarmPoolGroupVersionKind.GroupKind(),
			Labels:       []string{agentsv1beta1.WarmPoolSandboxLabel},
			Annotations:  map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"},
			QuietCreates: true,
		},
		{
			// A claim: nothing beyond the group's, but agent_sandboxes
			// names it in owned_by.
			Owner: extv1beta1.SandboxClaimGroupVersionKind.GroupKind(),
		},
	}
}
