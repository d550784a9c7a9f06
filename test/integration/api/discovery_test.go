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

package api

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestDiscovery checks what kubectl and other clients learn from
// discovery: v1beta1 preferred, short names, and which subresources each
// version serves.
func TestDiscovery(t *testing.T) {
	env := framework.Setup(t)
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	preferred := map[string]string{}
	for _, g := range groups.Groups {
		preferred[g.Name] = g.PreferredVersion.Version
	}
	for _, g := range []string{"agents.x-k8s.io", "extensions.agents.x-k8s.io"} {
		if preferred[g] != "v1beta1" {
			t.Errorf("preferred version of %s = %q, want v1beta1", g, preferred[g])
		}
	}

	// resource name -> short names, for every resource and subresource.
	served := func(gv string) map[string][]string {
		t.Helper()
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatalf("discovery of %s: %v", gv, err)
		}
		out := map[string][]string{}
		for _, r := range list.APIResources {
			out[r.Name] = r.ShortNames
		}
		return out
	}
	want := map[string]map[string][]string{
		"agents.x-k8s.io/v1beta1": {
			"sandboxes": {"sandbox"}, "sandboxes/status": nil,
		},
		"agents.x-k8s.io/v1alpha1": {
			"sandboxes": {"sandbox"}, "sandboxes/status": nil, "sandboxes/scale": nil,
		},
		"extensions.agents.x-k8s.io/v1beta1": {
			"sandboxtemplates": {"sandboxtemplate"},
			"sandboxclaims":    {"sandboxclaim"}, "sandboxclaims/status": nil,
			"sandboxwarmpools": {"swp"}, "sandboxwarmpools/status": nil, "sandboxwarmpools/scale": nil,
		},
		"extensions.agents.x-k8s.io/v1alpha1": {
			"sandboxtemplates": {"sandboxtemplate"},
			"sandboxclaims":    {"sandboxclaim"}, "sandboxclaims/status": nil,
			"sandboxwarmpools": {"swp"}, "sandboxwarmpools/status": nil, "sandboxwarmpools/scale": nil,
		},
	}
	for gv, resources := range want {
		if diff := cmp.Diff(resources, served(gv)); diff != "" {
			t.Errorf("%s resources (-want,+got):\n%s", gv, diff)
		}
	}
}

// warnings collects the Warning headers the API server sends.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(_ int, _, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

// TestV1alpha1IsDeprecated lists each kind through v1alpha1 in an empty
// namespace (nothing to convert, so no webhook is involved) and expects
// the exact deprecation warning clients have always been shown.
func TestV1alpha1IsDeprecated(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)

	tests := map[schema.GroupVersionResource]string{
		agentsv1alpha1.SandboxesResource:     "agents.x-k8s.io/v1alpha1 Sandbox is deprecated; use agents.x-k8s.io/v1beta1 Sandbox instead",
		extv1alpha1.SandboxTemplatesResource: "extensions.agents.x-k8s.io/v1alpha1 SandboxTemplate is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxTemplate instead",
		extv1alpha1.SandboxClaimsResource:    "extensions.agents.x-k8s.io/v1alpha1 SandboxClaim is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxClaim instead",
		extv1alpha1.SandboxWarmPoolsResource: "extensions.agents.x-k8s.io/v1alpha1 SandboxWarmPool is deprecated; use extensions.agents.x-k8s.io/v1beta1 SandboxWarmPool instead",
	}
	for gvr, want := range tests {
		t.Run(gvr.Resource, func(t *testing.T) {
			w := &warnings{}
			cfg := rest.CopyConfig(env.Config)
			cfg.WarningHandler = w
			client, err := dynamic.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			list, err := client.Resource(gvr).Namespace(env.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("listing %s: %v", gvr, err)
			}
			if len(list.Items) != 0 {
				t.Fatalf("namespace not empty: %d items", len(list.Items))
			}
			if !slices.Contains(w.got, want) {
				t.Errorf("warnings %q, want %q", w.got, want)
			}
		})
	}

	// The storage version carries no warning.
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Resource(schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxes"}).
		Namespace(env.Namespace).List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(w.got) != 0 {
		t.Errorf("v1beta1 request warned: %q", w.got)
	}
}
