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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"time"
)

// Certs are a CA and the webhook's serving certificate, PEM encoded.
type Certs struct {
	CA, Cert, Key []byte
}

// CertLifetime is how long a self-managed CA and serving certificate are
// valid.
const CertLifetime = 365 * 24 * time.Hour

// NewCerts creates a CA (ECDSA P-256) and a serving certificate for the
// given DNS names and IPs, valid for CertLifetime from now.
func NewCerts(dnsNames []string, ips []net.IP, now time.Time) (*Certs, error) {
	return NewCertsUntil(dnsNames, ips, now, now.Add(CertLifetime))
}

// NewCertsUntil is NewCerts with a chosen expiry; both certificates are
// valid from an hour before now (clock skew) until notAfter.
func NewCertsUntil(dnsNames []string, ips []net.IP, now, notAfter time.Time) (*Certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caSerial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: caSerial, Subject: pkix.Name{CommonName: "agent-sandbox-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
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
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "agent-sandbox-webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
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

// randomSerial is 128 random bits: every CA this code mints has the same
// subject, so fixed serials would make (issuer, serial) ambiguous across
// rotations, which RFC 5280 forbids and revocation and caching rely on.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// leaf parses the serving pair and its CA, and checks that the CA signed
// the certificate.
func (c *Certs) leaf() (*x509.Certificate, *x509.Certificate, error) {
	if c == nil {
		return nil, nil, errors.New("no certificate")
	}
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	cas, err := parseCerts(c.CA)
	if err != nil || len(cas) != 1 {
		return nil, nil, errors.New("ca.crt must hold exactly one certificate")
	}
	if err := leaf.CheckSignatureFrom(cas[0]); err != nil {
		return nil, nil, err
	}
	return leaf, cas[0], nil
}

// valid reports whether the serving certificate is in its validity
// period at now and covers dnsNames and ips.
func (c *Certs) valid(dnsNames []string, ips []net.IP, now time.Time) bool {
	leaf, _, err := c.leaf()
	if err != nil || now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
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

// parseCerts decodes every CERTIFICATE block of a PEM bundle.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// SameCA reports whether bundle already holds ca.
func SameCA(bundle, ca []byte) bool { return bytes.Equal(bytes.TrimSpace(bundle), bytes.TrimSpace(ca)) }

// BundleHas reports whether the PEM bundle holds every certificate of
// want (PEM).
func BundleHas(bundle, want []byte) bool {
	have, err := parseCerts(bundle)
	if err != nil {
		return false
	}
	wanted, err := parseCerts(want)
	if err != nil || len(wanted) == 0 {
		return false
	}
	for _, w := range wanted {
		found := false
		for _, h := range have {
			found = found || bytes.Equal(h.Raw, w.Raw)
		}
		if !found {
			return false
		}
	}
	return true
}
