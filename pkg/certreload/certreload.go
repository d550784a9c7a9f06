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

// Package certreload serves a TLS key pair from a certificate file and a key
// file, and picks up a renewed pair without a restart: the router's HTTPS
// listener and the conversion webhook (with cert-manager's files) both use
// it.
//
// k8s.io/apiserver's dynamiccertificates does the same, but that module
// would bring the whole generic API server into go.mod for one poll loop.
package certreload

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// DefaultInterval is how often Run looks at the files when the caller has
// no setting of its own: a renewal lands well before the old certificate
// expires, so seconds of delay cost nothing.
const DefaultInterval = 10 * time.Second

// Reloader serves the newest good key pair. It polls the files'
// resolved paths, modification times and sizes, so the atomic symlink swap
// of a mounted Secret is seen like any rewrite. A bad new pair
// (half written, or a key that does not match) is reported and the
// previous one stays in use.
type Reloader struct {
	certFile, keyFile string

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp string
}

// New loads the pair once; an error here means nothing can be served.
func New(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("reading TLS file: %w", err)
		}
		// The file the links resolve to: a Secret volume's swap points
		// ..data at a new directory, which the stamp must see even when
		// the new files have the old size and were written within the
		// file system's timestamp granularity (a few ms on tmpfs).
		target, err := filepath.EvalSymlinks(f)
		if err != nil {
			return "", fmt.Errorf("reading TLS file: %w", err)
		}
		s += fmt.Sprintf("%s>%s:%d:%d;", f, target, fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (r *Reloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS key pair: %w", err)
	}
	r.mu.Lock()
	r.cert, r.stamp = &cert, stamp
	r.mu.Unlock()
	return nil
}

// Run looks at the files every interval until ctx ends, and reloads the
// pair when they changed. onReload, when set, gets the outcome of every
// reload attempt (nil for success), for a metric; failures are logged
// here either way.
func (r *Reloader) Run(ctx context.Context, interval time.Duration, onReload func(error)) {
	logger := klog.FromContext(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.check()
		if !changed {
			continue
		}
		if onReload != nil {
			onReload(err)
		}
		if err != nil {
			logger.Error(err, "Reloading the serving certificate failed; keeping the previous one")
			continue
		}
		logger.Info("Reloaded the serving certificate")
	}
}

// check reloads the pair if the files changed since the last good load. A
// file that cannot be read counts as a change that failed.
func (r *Reloader) check() (changed bool, err error) {
	stamp, err := r.fileStamp()
	if err != nil {
		return true, err
	}
	r.mu.RLock()
	unchanged := stamp == r.stamp
	r.mu.RUnlock()
	if unchanged {
		return false, nil
	}
	return true, r.load(stamp)
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}
