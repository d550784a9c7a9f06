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

package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	listers "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// owned_by names the controller's kind only when the owner rules name it:
// a pool or a claim, never a kind of another group.
func TestSandboxCollectorOwnedBy(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	add := func(name string, gvk string, kind string) {
		sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		if kind != "" {
			sb.OwnerReferences = []metav1.OwnerReference{{APIVersion: gvk, Kind: kind, Name: "o", UID: "o-uid", Controller: new(true)}}
		}
		if err := indexer.Add(sb); err != nil {
			t.Fatal(err)
		}
	}
	ext := extv1beta1.SandboxClaimGroupVersionKind.GroupVersion().String()
	add("claimed", ext, extv1beta1.SandboxClaimKind)
	add("warm", ext, extv1beta1.SandboxWarmPoolKind)
	add("foreign", "example.com/v1", extv1beta1.SandboxClaimKind)
	add("own", "", "")

	tests := map[string]struct {
		owners controller.OwnerRules
		want   map[string]float64
	}{
		"extensions rules": {sandboxpolicy.SandboxOwners(), map[string]float64{"None": 2, "SandboxClaim": 1, "SandboxWarmPool": 1}},
		"no rules":         {nil, map[string]float64{"None": 4}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewSandboxCollector(listers.NewSandboxLister(indexer), tc.owners))
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, f := range families {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "owned_by" {
							got[l.GetValue()] += m.GetGauge().GetValue()
						}
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("agent_sandboxes by owned_by (-want,+got):\n%s", diff)
			}
		})
	}
}
