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
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// CRDNames are the CRDs whose conversion this webhook serves.
var CRDNames = []string{
	"sandboxes.agents.x-k8s.io",
	"sandboxtemplates.extensions.agents.x-k8s.io",
	"sandboxclaims.extensions.agents.x-k8s.io",
	"sandboxwarmpools.extensions.agents.x-k8s.io",
}

// Endpoint says how the API server reaches the webhook: a Service (in a
// cluster) or a URL (a controller run outside the cluster, as in the local
// dev setup, where no Service can route to it).
type Endpoint struct {
	ServiceName, ServiceNamespace string
	URL                           string
}

// InjectCABundle points the conversion webhook of every CRD of ours that
// uses webhook conversion at endpoint, trusting caBundle. It writes only
// CRDs that differ.
func InjectCABundle(ctx context.Context, client apiextensionsclient.Interface, caBundle []byte, endpoint Endpoint) error {
	for _, name := range CRDNames {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conv := crd.Spec.Conversion
			if conv == nil || conv.Strategy != apiextensionsv1.WebhookConverter {
				return nil
			}
			if conv.Webhook == nil {
				conv.Webhook = &apiextensionsv1.WebhookConversion{}
			}
			if len(conv.Webhook.ConversionReviewVersions) == 0 {
				conv.Webhook.ConversionReviewVersions = []string{"v1", "v1beta1"}
			}
			path := "/convert"
			want := &apiextensionsv1.WebhookClientConfig{CABundle: caBundle}
			if endpoint.URL != "" {
				u := endpoint.URL
				want.URL = &u
			} else {
				want.Service = &apiextensionsv1.ServiceReference{Name: endpoint.ServiceName, Namespace: endpoint.ServiceNamespace, Path: &path}
				if old := conv.Webhook.ClientConfig; old != nil && old.Service != nil && old.Service.Port != nil {
					want.Service.Port = old.Service.Port
				}
			}
			if cc := conv.Webhook.ClientConfig; cc != nil && SameCA(cc.CABundle, caBundle) && sameEndpoint(cc, want) {
				return nil
			}
			conv.Webhook.ClientConfig = want
			_, err = client.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{})
			if err == nil {
				klog.FromContext(ctx).Info("Injected the conversion webhook CA", "crd", name)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("injecting caBundle into CRD %s: %w", name, err)
		}
	}
	return nil
}

func sameEndpoint(a, b *apiextensionsv1.WebhookClientConfig) bool {
	switch {
	case (a.URL == nil) != (b.URL == nil) || (a.Service == nil) != (b.Service == nil):
		return false
	case a.URL != nil:
		return *a.URL == *b.URL
	case a.Service != nil:
		return a.Service.Name == b.Service.Name && a.Service.Namespace == b.Service.Namespace
	}
	return true
}
