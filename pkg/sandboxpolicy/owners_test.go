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
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// What a Sandbox hands its Pod depends on its controller reference only
// (api.md 9.3): a pool passes its label, the template hash and the
// eviction hint; a claim the template hash; anyone else nothing, whatever
// labels the Sandbox carries.
func TestSandboxOwners(t *testing.T) {
	ref := func(apiVersion, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "owner-uid", Controller: new(true)}}
	}
	v1beta1 := extv1beta1.SandboxWarmPoolGroupVersionKind.GroupVersion().String()
	poolHash, tmplHash := agentsv1beta1.NameHash("pool"), agentsv1beta1.NameHash("tmpl")
	type want struct {
		labels      map[string]string
		annotations map[string]string
		kind        string
		quiet       bool
	}
	none := map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "", agentsv1beta1.SandboxTemplateRefHashLabel: ""}
	tests := map[string]struct {
		refs []metav1.OwnerReference
		want want
	}{
		"warm pool": {ref(v1beta1, extv1beta1.SandboxWarmPoolKind), want{
			labels:      map[string]string{agentsv1beta1.WarmPoolSandboxLabel: poolHash, agentsv1beta1.SandboxTemplateRefHashLabel: tmplHash},
			annotations: map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"},
			kind:        extv1beta1.SandboxWarmPoolKind, quiet: true,
		}},
		"warm pool named by a v1alpha1 reference": {ref(extv1beta1.GroupName+"/v1alpha1", extv1beta1.SandboxWarmPoolKind), want{
			labels:      map[string]string{agentsv1beta1.WarmPoolSandboxLabel: poolHash, agentsv1beta1.SandboxTemplateRefHashLabel: tmplHash},
			annotations: map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"},
			kind:        extv1beta1.SandboxWarmPoolKind, quiet: true,
		}},
		"claim": {ref(v1beta1, extv1beta1.SandboxClaimKind), want{
			labels: map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "", agentsv1beta1.SandboxTemplateRefHashLabel: tmplHash},
			kind:   extv1beta1.SandboxClaimKind,
		}},
		"another extensions kind": {ref(v1beta1, extv1beta1.SandboxTemplateKind), want{
			labels: map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "", agentsv1beta1.SandboxTemplateRefHashLabel: tmplHash},
		}},
		"a kind of another group":              {ref("example.com/v1", extv1beta1.SandboxWarmPoolKind), want{labels: none}},
		"no controller (a user's own Sandbox)": {nil, want{labels: none}},
	}
	owners := SandboxOwners()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
				Labels:          map[string]string{agentsv1beta1.WarmPoolSandboxLabel: poolHash, agentsv1beta1.SandboxTemplateRefHashLabel: tmplHash},
				Annotations:     map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"},
				OwnerReferences: tc.refs,
			}}
			got := want{labels: owners.Labels(sb), annotations: owners.Annotations(sb), kind: owners.OwnerKind(sb), quiet: owners.QuietCreates(sb)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

// The eviction hint passes only with the value the pool writes.
func TestSandboxOwnersEvictionHintValue(t *testing.T) {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{agentsv1beta1.SafeToEvictAnnotation: "false"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: extv1beta1.SandboxWarmPoolGroupVersionKind.GroupVersion().String(), Kind: extv1beta1.SandboxWarmPoolKind,
			Name: "pool", UID: "pool-uid", Controller: new(true)}},
	}}
	if got := SandboxOwners().Annotations(sb); got != nil {
		t.Errorf("annotations %v, want none", got)
	}
}
