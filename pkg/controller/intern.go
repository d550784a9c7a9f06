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

package controller

import (
	"sync"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// maxInternedTemplates bounds the interner: one entry per distinct pod
// template hash and namespace. Entries are never looked at again once
// their pool's template changed or the pool went, so a full interner
// starts afresh (the cached Sandboxes keep the copies they share): the
// memory stays bounded over months of template edits and interning keeps
// working.
const maxInternedTemplates = 4096

// PodTemplateInterner makes the cached Sandboxes that carry an identical
// pod template share one decoded copy of its maps, slices and pointers.
// A warm pool's members all carry their pool's template: with 3000 members
// the copies were a third of the controller's live heap. Sharing is safe
// because objects in an informer's cache are read-only (every write here
// starts from a DeepCopy, which copies the shared parts too).
//
// The candidate is found by the pool's pod-template-hash label and then
// compared in full: a label anyone can write never decides what a cached
// Sandbox's spec says.
type PodTemplateInterner struct {
	mu        sync.Mutex
	templates map[string]*agentsv1beta1.PodTemplate // by namespace/hash label
}

// NewPodTemplateInterner returns an empty interner.
func NewPodTemplateInterner() *PodTemplateInterner {
	return &PodTemplateInterner{templates: map[string]*agentsv1beta1.PodTemplate{}}
}

// Intern replaces sb's pod template by the shared copy when it is
// identical to it. sb must be a freshly decoded object, not yet in a cache.
func (i *PodTemplateInterner) Intern(sb *agentsv1beta1.Sandbox) {
	hash := sb.Labels[agentsv1beta1.SandboxPodTemplateHashLabel]
	if hash == "" {
		return
	}
	key := sb.Namespace + "/" + hash
	i.mu.Lock()
	defer i.mu.Unlock()
	shared, ok := i.templates[key]
	switch {
	case !ok:
		if len(i.templates) >= maxInternedTemplates {
			clear(i.templates)
		}
		// A copy of its own: pointing into sb would keep the whole first
		// Sandbox alive after it left the cache.
		i.templates[key] = sb.Spec.PodTemplate.DeepCopy()
	case apiequality.Semantic.DeepEqual(*shared, sb.Spec.PodTemplate):
		sb.Spec.PodTemplate = *shared
	}
}

// Len is the number of shared templates.
func (i *PodTemplateInterner) Len() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.templates)
}
