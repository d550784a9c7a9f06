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
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestCertsCoverNamesAndExpire(t *testing.T) {
	now := time.Now()
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	names := []string{"agent-sandbox-webhook-service.agent-sandbox-system.svc"}
	c, err := NewCerts(names, ips, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.valid(names, ips, now) {
		t.Fatal("fresh certificate not valid")
	}
	if c.valid([]string{"other.svc"}, nil, now) {
		t.Error("certificate accepted for a name it does not cover")
	}
	if c.valid(names, ips, now.Add(CertLifetime)) {
		t.Error("expired certificate still counts as valid")
	}
	r := &CertRotator{RenewBefore: DefaultRenewBefore}
	if r.expiring(c, now) || !r.expiring(c, now.Add(CertLifetime-DefaultRenewBefore+time.Hour)) {
		t.Error("the renewal margin is not where RenewBefore puts it")
	}
	other, err := NewCerts(names, ips, now)
	if err != nil {
		t.Fatal(err)
	}
	if (&Certs{CA: other.CA, Cert: c.Cert, Key: c.Key}).valid(names, ips, now) {
		t.Error("a pair is valid next to a CA that did not sign it")
	}
}

// Every certificate gets 128 random bits of serial: the CAs share one
// subject, so fixed serials would repeat (issuer, serial) across rotations.
func TestCertSerialsAreRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 4 {
		c, err := NewCerts(nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		leaf, ca, err := c.leaf()
		if err != nil {
			t.Fatal(err)
		}
		for _, cert := range []*x509.Certificate{leaf, ca} {
			if cert.SerialNumber.BitLen() < 64 || seen[cert.SerialNumber.String()] {
				t.Errorf("serial %s: want 128 random bits, never repeated", cert.SerialNumber)
			}
			seen[cert.SerialNumber.String()] = true
		}
	}
}
