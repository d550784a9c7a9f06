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

package main

import (
	"os"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
)

// The secure default NetworkPolicy of every managed SandboxTemplate admits
// ingress only from Pods labelled app=sandbox-router in the router's
// namespace. A router Pod without that label cannot reach any sandbox.
func TestManifestPodsMatchSandboxNetworkPolicy(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/router/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Labels["app"]; got != sandboxtemplate.RouterAppLabel {
		t.Errorf("router Pod label app = %q, want %q (the sandboxes' default NetworkPolicy admits only those Pods)", got, sandboxtemplate.RouterAppLabel)
	}

	raw, err = os.ReadFile("../../manifests/router/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Namespace string `json:"namespace"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	if k.Namespace != sandboxtemplate.RouterNamespace {
		t.Errorf("router namespace = %q, want %q", k.Namespace, sandboxtemplate.RouterNamespace)
	}
}
