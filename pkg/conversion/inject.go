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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	apiextensionsv1client "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/apiextensions/v1"
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
func InjectCABundle(ctx context.Context, client apiextensionsv1client.CustomResourceDefinitionsGetter, caBundle []byte, endpoint Endpoint) error {
	return (&caInjector{crds: client}).inject(ctx, caBundle, endpoint)
}

// crdsResource is the resource of CustomResourceDefinitions, for reading
// their metadata alone.
var crdsResource = apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")

// caInjector is InjectCABundle with a memory of each CRD's resourceVersion
// when it was last read or written trusting a bundle at an endpoint. The
// CRDs of Sandboxes and templates carry the whole Pod schema (~400 KB
// each): the periodic check reads only their metadata and reads a whole
// CRD again only when it changed since (an upgrade, or someone editing its
// conversion) or the bundle or endpoint did.
type caInjector struct {
	crds apiextensionsv1client.CustomResourceDefinitionsGetter
	// meta reads CRD metadata; nil: every check reads the whole CRDs.
	meta metadata.Interface
	// checked is by CRD name; only the rotator's loop goroutine uses it.
	checked map[string]checkedCRD
}

// checkedCRD is a CRD seen trusting bundle at endpoint at resourceVersion.
type checkedCRD struct {
	resourceVersion string
	bundle          string
	endpoint        Endpoint
}

func (in *caInjector) inject(ctx context.Context, caBundle []byte, endpoint Endpoint) error {
	for _, name := range CRDNames {
		if in.unchanged(ctx, name, caBundle, endpoint) {
			continue
		}
		rv, err := injectOne(ctx, in.crds, name, caBundle, endpoint)
		if err != nil {
			delete(in.checked, name)
			return fmt.Errorf("injecting caBundle into CRD %s: %w", name, err)
		}
		if in.checked == nil {
			in.checked = map[string]checkedCRD{}
		}
		in.checked[name] = checkedCRD{resourceVersion: rv, bundle: string(caBundle), endpoint: endpoint}
	}
	return nil
}

// unchanged reports whether CRD name is still at the resourceVersion at
// which it was seen trusting caBundle at endpoint. Any error answers no:
// the whole read that follows reports it.
func (in *caInjector) unchanged(ctx context.Context, name string, caBundle []byte, endpoint Endpoint) bool {
	if in.meta == nil {
		return false
	}
	c, ok := in.checked[name]
	if !ok || c.bundle != string(caBundle) || c.endpoint != endpoint {
		return false
	}
	m, err := in.meta.Resource(crdsResource).Get(ctx, name, metav1.GetOptions{})
	return err == nil && m.ResourceVersion == c.resourceVersion
}

// injectOne makes CRD name trust caBundle at endpoint, if it uses webhook
// conversion, and returns the resourceVersion at which it does.
func injectOne(ctx context.Context, client apiextensionsv1client.CustomResourceDefinitionsGetter, name string, caBundle []byte, endpoint Endpoint) (string, error) {
	var rv string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crd, err := client.CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		rv = crd.ResourceVersion
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
		updated, err := client.CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{})
		if err == nil {
			rv = updated.ResourceVersion
			klog.FromContext(ctx).Info("Injected the conversion webhook CA", "crd", name)
		}
		return err
	})
	return rv, err
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
