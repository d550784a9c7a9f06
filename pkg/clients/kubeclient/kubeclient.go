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

// Package kubeclient is the client of the built-in groups the controller calls
// (core, networking, coordination, events and apiextensions, all v1; the
// last for the conversion webhook's CRDs), without discovery
// and without client-go's scheme of every group (see package clients).
// Built from generated/kube/clientset, whose types are k8s.io/api's; the
// generated kube informers take its Interface, which that clientset's fake
// satisfies too.
package kubeclient

import (
	"k8s.io/client-go/rest"

	apiextensionsv1 "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/apiextensions/v1"
	coordinationv1 "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/coordination/v1"
	corev1 "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/core/v1"
	eventsv1 "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/events/v1"
	networkingv1 "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/typed/networking/v1"
	"github.com/agentsandbox/agent-sandbox/pkg/clients"
)

// Interface names the group clients the controller uses.
type Interface interface {
	CoreV1() corev1.CoreV1Interface
	NetworkingV1() networkingv1.NetworkingV1Interface
	CoordinationV1() coordinationv1.CoordinationV1Interface
	EventsV1() eventsv1.EventsV1Interface
	ApiextensionsV1() apiextensionsv1.ApiextensionsV1Interface
}

// Clientset holds one client per group version.
type Clientset struct {
	coreV1          *corev1.CoreV1Client
	networkingV1    *networkingv1.NetworkingV1Client
	coordinationV1  *coordinationv1.CoordinationV1Client
	eventsV1        *eventsv1.EventsV1Client
	apiextensionsV1 *apiextensionsv1.ApiextensionsV1Client
}

var _ Interface = (*Clientset)(nil)

// NewForConfig builds the clients on one shared HTTP client. The
// generated group clients prefer protobuf for these kinds.
func NewForConfig(c *rest.Config) (*Clientset, error) {
	cfg, httpClient, err := clients.Prepare(c)
	if err != nil {
		return nil, err
	}
	var cs Clientset
	if cs.coreV1, err = corev1.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.networkingV1, err = networkingv1.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.coordinationV1, err = coordinationv1.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.eventsV1, err = eventsv1.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.apiextensionsV1, err = apiextensionsv1.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	return &cs, nil
}

// CoreV1 returns the core/v1 client.
func (c *Clientset) CoreV1() corev1.CoreV1Interface { return c.coreV1 }

// NetworkingV1 returns the networking.k8s.io/v1 client.
func (c *Clientset) NetworkingV1() networkingv1.NetworkingV1Interface { return c.networkingV1 }

// CoordinationV1 returns the coordination.k8s.io/v1 client.
func (c *Clientset) CoordinationV1() coordinationv1.CoordinationV1Interface { return c.coordinationV1 }

// EventsV1 returns the events.k8s.io/v1 client.
func (c *Clientset) EventsV1() eventsv1.EventsV1Interface { return c.eventsV1 }

// ApiextensionsV1 returns the apiextensions.k8s.io/v1 client.
func (c *Clientset) ApiextensionsV1() apiextensionsv1.ApiextensionsV1Interface {
	return c.apiextensionsV1
}
