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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// routerManifest is the router's base as one stream, comments and all, the
// shape kubectl kustomize renders.
func routerManifest(t *testing.T) []byte {
	t.Helper()
	var all []byte
	for _, f := range []string{"serviceaccount.yaml", "rbac.yaml", "deployment.yaml", "service.yaml"} {
		raw, err := os.ReadFile("../../manifests/router/" + f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, "---\n"...), raw...)
	}
	return all
}

func TestManifestObjects(t *testing.T) {
	out, err := manifestObjects(routerManifest(t), []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for doc := range strings.SplitSeq(string(out), "---\n") {
		if doc == "" {
			continue
		}
		var obj metav1.PartialObjectMetadata
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		got = append(got, obj.Kind+"/"+obj.Name)
	}
	want := []string{"ServiceAccount/sandbox-router", "ClusterRole/sandbox-router", "ClusterRoleBinding/sandbox-router"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}

	if _, err := manifestObjects(routerManifest(t), []string{"Ingress"}); err == nil {
		t.Error("no error for a kind the manifest lacks")
	}
}

func TestContainerArgs(t *testing.T) {
	args, err := containerArgs(routerManifest(t), "sandbox-router", "router")
	if err != nil {
		t.Fatal(err)
	}
	// The shipped authorization is what the local router must run with.
	for _, want := range []string{"--authz-mode=subjectaccessreview", "--authz-tokenreview-audiences=agent-sandbox-router"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}

	for _, c := range []struct{ deployment, container string }{{"sandbox-router", "sidecar"}, {"other", "router"}} {
		if _, err := containerArgs(routerManifest(t), c.deployment, c.container); err == nil {
			t.Errorf("no error for Deployment %s container %s", c.deployment, c.container)
		}
	}
	withCommand := strings.Replace(string(routerManifest(t)), "          args:\n", "          command: [/bin/sh]\n          args:\n", 1)
	if _, err := containerArgs([]byte(withCommand), "sandbox-router", "router"); err == nil {
		t.Error("no error for a container with a command")
	}
}
