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

// Command crdpostprocess adds to controller-gen's CRDs what kubebuilder
// markers cannot express: the webhook conversion stanza every CRD of this
// project carries, and the storage version listed first. It rewrites the
// files in place.
package main

import (
	"fmt"
	"os"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The conversion webhook Service, as the release manifests deploy it. The
// controller injects the caBundle (or cert-manager does) at run time.
const (
	webhookServiceName      = "agent-sandbox-webhook-service"
	webhookServiceNamespace = "agent-sandbox-system"
	webhookPath             = "/convert"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdpostprocess CRD.yaml...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := process(path); err != nil {
			fmt.Fprintf(os.Stderr, "crdpostprocess: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

func process(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(in, &crd); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if len(crd.Spec.Versions) > 1 {
		path := webhookPath
		crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
			Strategy: apiextensionsv1.WebhookConverter,
			Webhook: &apiextensionsv1.WebhookConversion{
				ConversionReviewVersions: []string{"v1", "v1beta1"},
				ClientConfig: &apiextensionsv1.WebhookClientConfig{
					Service: &apiextensionsv1.ServiceReference{
						Name:      webhookServiceName,
						Namespace: webhookServiceNamespace,
						Path:      &path,
					},
				},
			},
		}
	}
	// Storage version first, then the rest newest first, so readers of the
	// CRD see the preferred version at the top.
	slices.SortStableFunc(crd.Spec.Versions, func(a, b apiextensionsv1.CustomResourceDefinitionVersion) int {
		switch {
		case a.Storage && !b.Storage:
			return -1
		case b.Storage && !a.Storage:
			return 1
		}
		return 0
	})

	// Round-trip through a map to drop the empty status and zero timestamp
	// that the typed struct always serializes.
	raw, err := yaml.Marshal(&crd)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return err
	}
	delete(obj, "status")
	if md, ok := obj["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}
