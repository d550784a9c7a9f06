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

// Package agentsclient is the client of the agents.x-k8s.io and
// extensions.agents.x-k8s.io groups without discovery (see package
// clients). The generated informers take its Interface, which the
// generated clientset and its fake satisfy too.
package agentsclient

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/typed/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/typed/agents/v1beta1"
	extensionsv1alpha1 "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/typed/extensions/v1alpha1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/typed/extensions/v1beta1"
	agentsapiv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsapiv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsapiv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extensionsapiv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/serverjson"
)

// Interface is the generated clientset's Interface without Discovery.
type Interface interface {
	AgentsV1alpha1() agentsv1alpha1.AgentsV1alpha1Interface
	AgentsV1beta1() agentsv1beta1.AgentsV1beta1Interface
	ExtensionsV1alpha1() extensionsv1alpha1.ExtensionsV1alpha1Interface
	ExtensionsV1beta1() extensionsv1beta1.ExtensionsV1beta1Interface
}

// Clientset holds one client per group version.
type Clientset struct {
	agentsV1alpha1     *agentsv1alpha1.AgentsV1alpha1Client
	agentsV1beta1      *agentsv1beta1.AgentsV1beta1Client
	extensionsV1alpha1 *extensionsv1alpha1.ExtensionsV1alpha1Client
	extensionsV1beta1  *extensionsv1beta1.ExtensionsV1beta1Client
}

var _ Interface = (*Clientset)(nil)

// NewForConfig builds the clients on one shared HTTP client. They decode
// JSON as the generated clients do, with fewer passes over the API
// server's bytes (package serverjson): custom resources have no
// protobuf, and decoding their watch events and write responses was the
// largest part of the controller's CPU after its syncs.
func NewForConfig(c *rest.Config) (*Clientset, error) {
	cfg, httpClient, err := clients.Prepare(c)
	if err != nil {
		return nil, err
	}
	var cs Clientset
	rc, err := restClient(cfg, httpClient, agentsapiv1alpha1.SandboxesResource.GroupVersion())
	if err != nil {
		return nil, err
	}
	cs.agentsV1alpha1 = agentsv1alpha1.New(rc)
	if rc, err = restClient(cfg, httpClient, agentsapiv1beta1.SandboxesResource.GroupVersion()); err != nil {
		return nil, err
	}
	cs.agentsV1beta1 = agentsv1beta1.New(rc)
	if rc, err = restClient(cfg, httpClient, extensionsapiv1alpha1.SandboxClaimsResource.GroupVersion()); err != nil {
		return nil, err
	}
	cs.extensionsV1alpha1 = extensionsv1alpha1.New(rc)
	if rc, err = restClient(cfg, httpClient, extensionsapiv1beta1.SandboxClaimsResource.GroupVersion()); err != nil {
		return nil, err
	}
	cs.extensionsV1beta1 = extensionsv1beta1.New(rc)
	return &cs, nil
}

// restClient is the REST client a generated group client's
// NewForConfigAndClient builds for gv, with serverjson's serializer.
func restClient(c *rest.Config, h *http.Client, gv schema.GroupVersion) (*rest.RESTClient, error) {
	cfg := *c
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serverjson.NegotiatedSerializer(
		rest.CodecFactoryForGeneratedClient(scheme.Scheme, scheme.Codecs).WithoutConversion(), scheme.Scheme)
	return rest.RESTClientForConfigAndClient(&cfg, h)
}

// AgentsV1alpha1 returns the agents.x-k8s.io/v1alpha1 client.
func (c *Clientset) AgentsV1alpha1() agentsv1alpha1.AgentsV1alpha1Interface { return c.agentsV1alpha1 }

// AgentsV1beta1 returns the agents.x-k8s.io/v1beta1 client.
func (c *Clientset) AgentsV1beta1() agentsv1beta1.AgentsV1beta1Interface { return c.agentsV1beta1 }

// ExtensionsV1alpha1 returns the extensions.agents.x-k8s.io/v1alpha1 client.
func (c *Clientset) ExtensionsV1alpha1() extensionsv1alpha1.ExtensionsV1alpha1Interface {
	return c.extensionsV1alpha1
}

// ExtensionsV1beta1 returns the extensions.agents.x-k8s.io/v1beta1 client.
func (c *Clientset) ExtensionsV1beta1() extensionsv1beta1.ExtensionsV1beta1Interface {
	return c.extensionsV1beta1
}
