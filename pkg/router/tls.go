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
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// certReloader serves the newest good certificate. It polls the files'
// modification times and sizes: os.Stat follows symlinks, so the atomic
// symlink swap of a mounted Secret is seen like any rewrite. A bad new pair
// is reported and the previous certificate stays in use.
type certReloader struct {
	certFile, keyFile string
	metrics           *Metrics
	logger            klog.Logger

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp string
}

func newCertReloader(certFile, keyFile string, m *Metrics, logger klog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, metrics: m, logger: logger}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("reading TLS file: %w", err)
		}
		s += fmt.Sprintf("%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (c *certReloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS key pair: %w", err)
	}
	c.mu.Lock()
	c.cert, c.stamp = &cert, stamp
	c.mu.Unlock()
	return nil
}

func (c *certReloader) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp, err := c.fileStamp()
		c.mu.RLock()
		unchanged := stamp == c.stamp
		c.mu.RUnlock()
		if err == nil && unchanged {
			continue
		}
		if err == nil {
			err = c.load(stamp)
		}
		if err != nil {
			c.metrics.CertReloads.WithLabelValues("failure").Inc()
			c.logger.Error(err, "Reloading the serving certificate failed; keeping the previous one")
			continue
		}
		c.metrics.CertReloads.WithLabelValues("success").Inc()
		c.logger.Info("Reloaded the serving certificate")
	}
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}
