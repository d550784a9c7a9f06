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
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCertsCoverNamesAndRenewal(t *testing.T) {
	now := time.Now()
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	names := []string{"agent-sandbox-webhook-service.agent-sandbox-system.svc"}
	c, err := NewCerts(names, ips, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.usable(names, ips, now) {
		t.Fatal("fresh certificate not usable")
	}
	if c.usable([]string{"other.svc"}, nil, now) {
		t.Error("certificate accepted for a name it does not cover")
	}
	if c.usable(names, ips, now.Add(certLifetime-renewBefore+time.Hour)) {
		t.Error("certificate inside the renewal margin still counts as usable")
	}
}

func TestFileCertReloadsRenewedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(c *Certs, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(certFile, c.Cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, c.Key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(certFile, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := NewCerts([]string{"a"}, nil, time.Now())
	second, _ := NewCerts([]string{"b"}, nil, time.Now())
	write(first, time.Now().Add(-time.Minute))
	get := FileCert(certFile, keyFile)
	c1, err := get(nil)
	if err != nil {
		t.Fatal(err)
	}
	write(second, time.Now())
	c2, err := get(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c1.Certificate[0]) == string(c2.Certificate[0]) {
		t.Error("the renewed certificate was not picked up")
	}

	r := &RotatingCert{}
	if _, err := r.GetCertificate(nil); err == nil {
		t.Error("a rotating cert with nothing set served something")
	}
	if err := r.Set(first); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(second); err != nil {
		t.Fatal(err)
	}
	got, _ := r.GetCertificate(nil)
	if string(got.Certificate[0]) != string(c2.Certificate[0]) {
		t.Error("the rotating cert does not serve the latest pair")
	}
}
