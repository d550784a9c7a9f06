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
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
)

func readManifest(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

// The plugin's defaults find the router where manifests/router installs it,
// and mint tokens for the audience the shipped router accepts.
func TestDefaultsMatchRouterManifests(t *testing.T) {
	var k struct {
		Namespace string `json:"namespace"`
	}
	readManifest(t, "../../manifests/router/kustomization.yaml", &k)
	if k.Namespace != cli.DefaultRouterNamespace {
		t.Errorf("router namespace %q, plugin default %q", k.Namespace, cli.DefaultRouterNamespace)
	}
	var svc corev1.Service
	readManifest(t, "../../manifests/router/service.yaml", &svc)
	if svc.Name != cli.DefaultRouterService {
		t.Errorf("router Service %q, plugin default %q", svc.Name, cli.DefaultRouterService)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == cli.DefaultRouterPort }) {
		t.Errorf("router Service ports %v have no %d", svc.Spec.Ports, cli.DefaultRouterPort)
	}
	var d appsv1.Deployment
	readManifest(t, "../../manifests/router/deployment.yaml", &d)
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--authz-tokenreview-audiences="+cli.DefaultRouterAudience) {
		t.Errorf("router args %v do not accept the plugin's audience %q", args, cli.DefaultRouterAudience)
	}
}
