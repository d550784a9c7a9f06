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
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Certs are a CA and the webhook's serving certificate, PEM encoded.
type Certs struct {
	CA, Cert, Key []byte
}

const (
	certLifetime = 365 * 24 * time.Hour
	// renewBefore: certificates this close to expiry are replaced at
	// start-up, long before the API server would start refusing them.
	renewBefore = 30 * 24 * time.Hour

	secretCA   = "ca.crt"
	secretCert = "tls.crt"
	secretKey  = "tls.key"
)

// NewCerts creates a CA (ECDSA P-256) and a serving certificate for the
// given DNS names and IPs, valid for a year.
func NewCerts(dnsNames []string, ips []net.IP, now time.Time) (*Certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent-sandbox-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certLifetime),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "agent-sandbox-webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certLifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dnsNames, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certs{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// usable reports whether the serving certificate covers dnsNames and ips
// and stays valid past the renewal margin.
func (c *Certs) usable(dnsNames []string, ips []net.IP, now time.Time) bool {
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil || len(c.CA) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, n := range dnsNames {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	for _, ip := range ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

// EnsureCertSecret returns the certificates kept in Secret ns/name,
// creating or replacing them when missing, not covering the names, or
// near expiry. Every replica of the controller serves the same
// certificate, so whichever one the API server reaches is trusted.
func EnsureCertSecret(ctx context.Context, kube kubernetes.Interface, ns, name string, dnsNames []string, ips []net.IP) (*Certs, error) {
	secrets := kube.CoreV1().Secrets(ns)
	now := time.Now()
	existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
	found := err == nil
	if found {
		have := &Certs{CA: existing.Data[secretCA], Cert: existing.Data[secretCert], Key: existing.Data[secretKey]}
		if have.usable(dnsNames, ips, now) {
			return have, nil
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading webhook certificate secret: %w", err)
	}
	certs, err := NewCerts(dnsNames, ips, now)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{secretCA: certs.CA, secretCert: certs.Cert, secretKey: certs.Key}
	if found {
		existing.Data = data
		if _, err := secrets.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("renewing webhook certificate secret: %w", err)
		}
		return certs, nil
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeTLS, Data: data}
	if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Another replica won the race: use its certificates.
			return EnsureCertSecret(ctx, kube, ns, name, dnsNames, ips)
		}
		return nil, fmt.Errorf("creating webhook certificate secret: %w", err)
	}
	return certs, nil
}

// SameCA reports whether bundle already holds ca.
func SameCA(bundle, ca []byte) bool { return bytes.Equal(bytes.TrimSpace(bundle), bytes.TrimSpace(ca)) }
