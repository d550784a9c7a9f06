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

package certreload

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
)

// writePair writes a fresh certificate for name and its key into dir.
func writePair(t *testing.T, dir, name string) {
	t.Helper()
	c, err := conversion.NewCerts([]string{name}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{"tls.crt": c.Cert, "tls.key": c.Key} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func served(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.DNSNames[0]
}

// A Secret volume is updated the kubelet's way: the files are links
// through ..data to a timestamped directory, and an update writes a new
// directory and renames a new ..data link over the old one. The new pair
// must be served without a restart (the router's HTTPS option of
// manifests/components/router-tls relies on it).
func TestFollowsSecretVolumeSwap(t *testing.T) {
	vol := t.TempDir()
	// swap writes a pair into a fresh directory and points ..data at it
	// atomically, as pkg/volume/util.AtomicWriter does.
	swap := func(name, dir string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(vol, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		writePair(t, filepath.Join(vol, dir), name)
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
	r, err := New(filepath.Join(vol, "tls.crt"), filepath.Join(vol, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if name := served(t, r); name != "first" {
		t.Fatalf("served %q, want first", name)
	}
	if changed, err := r.check(); changed || err != nil {
		t.Fatalf("check on unchanged files = %t, %v; want false, nil", changed, err)
	}
	swap("second", "..2026_01_01_00_00_01.2")
	if changed, err := r.check(); !changed || err != nil {
		t.Fatalf("check after the swap = %t, %v; want true, nil", changed, err)
	}
	if name := served(t, r); name != "second" {
		t.Errorf("served %q after the swap, want second", name)
	}
}

// A pair caught mid-write (or a key that does not match) must not replace
// the one being served, and is tried again until it loads.
func TestBadPairKeepsThePreviousOne(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "first")
	r, err := New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("half a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if changed, err := r.check(); !changed || err == nil {
			t.Fatalf("check on a broken key = %t, %v; want true and an error", changed, err)
		}
		if name := served(t, r); name != "first" {
			t.Fatalf("served %q with a broken new key, want first", name)
		}
	}
	writePair(t, dir, "second")
	if changed, err := r.check(); !changed || err != nil {
		t.Fatalf("check on the repaired pair = %t, %v; want true, nil", changed, err)
	}
	if name := served(t, r); name != "second" {
		t.Errorf("served %q, want second", name)
	}
}

func TestNewFailsWithoutAPair(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err == nil {
		t.Error("New without files: no error")
	}
}

// Run is the loop around check: it reports each reload to onReload. The
// test writes the two files one after the other, so Run may first see a
// new certificate with the old key and report that as a failure.
func TestRunReportsReloads(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "first")
	r, err := New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	reloaded := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		r.Run(ctx, time.Millisecond, func(err error) {
			if err != nil {
				return
			}
			select {
			case reloaded <- struct{}{}:
			default:
			}
		})
	})
	defer wg.Wait()
	defer cancel()
	writePair(t, dir, "second")
	<-reloaded
	if name := served(t, r); name != "second" {
		t.Errorf("served %q, want second", name)
	}
}
