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
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// OnlyActivityChanged reports whether a Sandbox update changed nothing but
// its last-activity annotation (and so its resourceVersion and managed
// fields). The routers write that annotation while a sandbox is busy, at
// most once per idle window each; the controllers' handlers drop such
// updates so activity costs no syncs: a Sandbox controller timer armed for
// the old idle deadline re-reads the Sandbox anyway (docs/design/idle.md).
// A resync (same resourceVersion) is not such an update.
func OnlyActivityChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*agentsv1beta1.Sandbox)
	n, ok2 := newObj.(*agentsv1beta1.Sandbox)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return false
	}
	const key = agentsv1beta1.LastActivityAnnotation
	if o.Annotations[key] == n.Annotations[key] {
		return false
	}
	// A spec change moves the generation (status subresource), so the
	// spec itself need not be compared.
	if o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Status, n.Status) {
		return false
	}
	om, nm := o.ObjectMeta, n.ObjectMeta
	om.ResourceVersion, nm.ResourceVersion = "", ""
	om.ManagedFields, nm.ManagedFields = nil, nil
	om.Annotations, nm.Annotations = without(o.Annotations, key), without(n.Annotations, key)
	return equality.Semantic.DeepEqual(om, nm)
}

func without(m map[string]string, key string) map[string]string {
	if _, ok := m[key]; !ok {
		return m
	}
	c := maps.Clone(m)
	delete(c, key)
	if len(c) == 0 {
		return nil
	}
	return c
}
