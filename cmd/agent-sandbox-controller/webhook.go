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
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/agentsandbox/agent-sandbox/pkg/certreload"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controllermanager"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
)

// certSecretName holds the self-managed webhook certificate.
const certSecretName = "agent-sandbox-webhook-certs"

type webhookOptions struct {
	enabled                     bool
	port                        int
	certDir, certName, keyName  string
	serviceName, namespace, url string
	manageCerts                 bool
	clusterDomain               string
	limits                      conversion.Limits
}

// startWebhook serves the conversion webhook in the background: with
// self-managed certificates (shared through a Secret, CA injected into
// the CRDs) or with files mounted by cert-manager.
func startWebhook(ctx context.Context, o options, cfg *rest.Config) error {
	logger := klog.FromContext(ctx)
	w := o.webhook
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if w.manageCerts {
		// Certificate rotation and caBundle injection send a user agent of
		// their own, apart from the controllers'.
		webhookCfg := rest.CopyConfig(cfg)
		webhookCfg.UserAgent = controllermanager.UserAgent("webhook")
		kube, err := kubeclient.NewForConfig(webhookCfg)
		if err != nil {
			return err
		}
		dnsNames := []string{
			w.serviceName + "." + w.namespace + ".svc",
			w.serviceName + "." + w.namespace + ".svc." + o.clusterDomain,
		}
		var ips []net.IP
		endpoint := conversion.Endpoint{ServiceName: w.serviceName, ServiceNamespace: w.namespace}
		if w.url != "" {
			u, err := url.Parse(w.url)
			if err != nil {
				return fmt.Errorf("--webhook-url: %w", err)
			}
			if ip := net.ParseIP(u.Hostname()); ip != nil {
				ips = append(ips, ip)
			} else {
				dnsNames = append(dnsNames, u.Hostname())
			}
			endpoint = conversion.Endpoint{URL: w.url}
		}
		crdMeta, err := metadata.NewForConfig(webhookCfg)
		if err != nil {
			return err
		}
		rotator := &conversion.CertRotator{
			Kube: kube, CRDs: kube.ApiextensionsV1(), CRDMetadata: crdMeta, Namespace: w.namespace, Secret: certSecretName,
			DNSNames: dnsNames, IPs: ips, Endpoint: endpoint,
		}
		if err := rotator.Start(ctx); err != nil {
			return err
		}
		getCert = rotator.GetCertificate
	} else {
		// cert-manager renews the mounted files in place.
		cr, err := certreload.New(filepath.Join(w.certDir, w.certName), filepath.Join(w.certDir, w.keyName))
		if err != nil {
			return fmt.Errorf("loading the webhook certificate: %w", err)
		}
		go cr.Run(ctx, certreload.DefaultInterval, nil)
		getCert = cr.GetCertificate
	}
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(w.port)))
	if err != nil {
		return err
	}
	go func() {
		if err := conversion.Serve(ctx, l, getCert, w.limits); err != nil {
			logger.Error(err, "Conversion webhook stopped")
		}
	}()
	return nil
}
