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
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Serve serves the conversion webhook at /convert over TLS on l until ctx
// is done. getCert supplies the serving certificate per handshake, so a
// renewed certificate is picked up without a restart.
func Serve(ctx context.Context, l net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	mux := http.NewServeMux()
	mux.Handle("/convert", Handler{})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert},
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.FromContext(ctx).Info("Serving the conversion webhook", "address", l.Addr().String())
	if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// StaticCert serves one certificate pair.
func StaticCert(c *Certs) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, err
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }, nil
}

// RotatingCert serves the current certificate of a self-managed pair and
// lets a background loop replace it; handshakes always see a whole pair.
type RotatingCert struct {
	current atomic.Pointer[tls.Certificate]
}

// Set installs c as the certificate served from now on.
func (r *RotatingCert) Set(c *Certs) error {
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return err
	}
	r.current.Store(&pair)
	return nil
}

// GetCertificate is a tls.Config.GetCertificate.
func (r *RotatingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := r.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// FileCert serves the pair in certFile and keyFile, reloading it when the
// files change (cert-manager renews them in place).
func FileCert(certFile, keyFile string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var mu sync.Mutex
	var cached *tls.Certificate
	var stamp time.Time
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		st, err := os.Stat(certFile)
		if err != nil {
			if cached != nil {
				return cached, nil
			}
			return nil, err
		}
		if cached == nil || st.ModTime().After(stamp) {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				if cached != nil {
					return cached, nil // mid-write: keep serving the old pair
				}
				return nil, err
			}
			cached, stamp = &pair, st.ModTime()
		}
		return cached, nil
	}
}
