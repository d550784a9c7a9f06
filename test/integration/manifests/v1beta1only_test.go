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

package manifests

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestV1beta1OnlyComponent: over the default install, the component leaves
// v1beta1 served and stored and stops serving v1alpha1 on all four CRDs,
// and the API server accepts the change to the installed CRDs (a dry run:
// the package's control plane serves v1alpha1 to its other tests).
func TestV1beta1OnlyComponent(t *testing.T) {
	env := framework.Setup(t)
	rendered := renderWithComponent(t, env, "manifests/default", "manifests/components/v1beta1-only")
	var crds []byte
	n := 0
	for _, o := range decode(t, rendered) {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		n++
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			t.Fatal(err)
		}
		got := map[string][2]bool{}
		for _, v := range crd.Spec.Versions {
			got[v.Name] = [2]bool{v.Served, v.Storage}
		}
		want := map[string][2]bool{"v1beta1": {true, true}, "v1alpha1": {false, false}}
		if len(got) != len(want) || got["v1beta1"] != want["v1beta1"] || got["v1alpha1"] != want["v1alpha1"] {
			t.Errorf("%s: versions (served, storage) %v, want %v", crd.Name, got, want)
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		crds = append(append(crds, "---\n"...), b...)
	}
	if n != 4 {
		t.Fatalf("%d CRDs rendered, want 4", n)
	}
	run(t, env, crds, "apply", "--dry-run=server", "-f", "-")
}
