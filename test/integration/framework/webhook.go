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

package framework

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
)

// StartConversionWebhook serves /convert on 127.0.0.1 and points the CRDs
// at it, so that v1alpha1 reads and writes work: the shipped CRDs name an
// in-cluster Service the test control plane does not have. The CRDs are
// shared by the package's tests; after the test they point at a closed
// port, as unreachable as before.
func StartConversionWebhook(t *testing.T, env *Env) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := conversion.NewCerts(nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	getCert, err := conversion.StaticCert(certs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- conversion.Serve(ctx, l, getCert, conversion.DefaultLimits()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	url := fmt.Sprintf("https://%s/convert", l.Addr())
	if err := conversion.InjectCABundle(ctx, env.ControllerKube.ApiextensionsV1(), certs.CA, conversion.Endpoint{URL: url}); err != nil {
		t.Fatal(err)
	}
	for _, name := range conversion.CRDNames {
		crd, err := env.APIExtension.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cc := crd.Spec.Conversion.Webhook.ClientConfig
		if cc.URL == nil || *cc.URL != url || !conversion.SameCA(cc.CABundle, certs.CA) {
			t.Fatalf("CRD %s webhook client config %+v: the CA and URL were not injected", name, cc)
		}
	}
}
