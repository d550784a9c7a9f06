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

package conversion

import (
	"context"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metadatafake "k8s.io/client-go/metadata/fake"

	extfake "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
)

// The periodic check reads a whole CRD only when its resourceVersion, the
// bundle or the endpoint changed since it was last seen trusting them;
// otherwise only its metadata.
func TestCAInjectorReadsWholeCRDsOnlyOnChange(t *testing.T) {
	ctx := context.Background()
	ext := extfake.NewSimpleClientset()
	var metas []*metav1.PartialObjectMetadata
	for _, name := range CRDNames {
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter, Webhook: &apiextensionsv1.WebhookConversion{},
			}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		metas = append(metas, &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
		})
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme, metas[0], metas[1], metas[2], metas[3])
	in := &caInjector{crds: ext.ApiextensionsV1(), meta: meta}
	endpoint := Endpoint{URL: "https://127.0.0.1:9443/convert"}

	wholeReads := func(in *caInjector, step string, bundle string, ep Endpoint, want int) {
		t.Helper()
		ext.ClearActions()
		if err := in.inject(ctx, []byte(bundle), ep); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := 0
		for _, a := range ext.Actions() {
			if a.GetVerb() == "get" {
				got++
			}
		}
		if got != want {
			t.Errorf("%s: %d whole CRD reads, want %d", step, got, want)
		}
	}
	wholeReads(in, "first check", "ca-1", endpoint, 4)
	wholeReads(in, "nothing changed", "ca-1", endpoint, 0)
	edited := metas[0].DeepCopy()
	edited.ResourceVersion = "2"
	if err := meta.Tracker().Update(crdsResource, edited, ""); err != nil {
		t.Fatal(err)
	}
	wholeReads(in, "one CRD changed", "ca-1", endpoint, 1)
	wholeReads(in, "a new bundle", "ca-2", endpoint, 4)
	wholeReads(in, "a new endpoint", "ca-2", Endpoint{URL: "https://127.0.0.1:9444/convert"}, 4)

	// Without a metadata client every check reads every CRD.
	plain := &caInjector{crds: ext.ApiextensionsV1()}
	wholeReads(plain, "without metadata, first check", "ca-2", endpoint, 4)
	wholeReads(plain, "without metadata, nothing changed", "ca-2", endpoint, 4)
}
