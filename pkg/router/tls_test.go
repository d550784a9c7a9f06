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

package router

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

// A Secret volume is updated the kubelet's way: the files are links
// through ..data to a timestamped directory, and an update writes a new
// directory and renames a new ..data link over the old one. The router
// must serve the new certificate without a restart (the HTTPS option of
// manifests/components/router-tls relies on it).
func TestCertReloaderFollowsSecretVolumeSwap(t *testing.T) {
	vol := t.TempDir()
	// swap writes a certificate into a fresh directory and points ..data
	// at it atomically, as pkg/volume/util.AtomicWriter does.
	swap := func(cn, dir string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(vol, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		writeSelfSigned(t, filepath.Join(vol, dir), cn)
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink(dir, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap("first", "..2026_01_01_00_00_00.1")
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(vol, f)); err != nil {
			t.Fatal(err)
		}
	}
	logger, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, err := NewMetrics(NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cr, err := newCertReloader(filepath.Join(vol, "tls.crt"), filepath.Join(vol, "tls.key"), m, logger)
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, _ := cr.getCertificate(nil)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("served CN = %q, want first", cn)
	}
	go cr.run(ctx, 10*time.Millisecond)
	swap("second", "..2026_01_01_00_00_01.2")
	deadline := time.Now().Add(10 * time.Second)
	for served() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("the swapped Secret volume's certificate was never served")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
