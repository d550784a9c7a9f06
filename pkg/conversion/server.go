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
	"time"

	"k8s.io/klog/v2"
)

// Serve serves the conversion webhook at /convert over TLS on l until ctx
// is done, within limits. getCert supplies the serving certificate per
// handshake, so a renewed certificate is picked up without a restart.
func Serve(ctx context.Context, l net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), limits Limits) error {
	if err := limits.Validate(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/convert", newLimitedHandler(limits))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(10*time.Second, limits.ReadTimeout),
		// The whole request, body included: a client trickling its body
		// holds its admission for this long at most (HTTP/1 and, per
		// stream, HTTP/2).
		ReadTimeout: limits.ReadTimeout,
		// Reading, converting and answering; a client that stops reading
		// the answer is cut off instead of pinning the converted objects.
		WriteTimeout:   limits.ReadTimeout + 30*time.Second,
		IdleTimeout:    limits.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		TLSConfig:      &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert},
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.FromContext(ctx).Info("Serving the conversion webhook", "address", l.Addr().String(),
		"maxRequestBytes", limits.MaxRequestBytes, "maxInFlight", limits.MaxInFlight,
		"maxInFlightBytes", limits.MaxInFlightBytes, "readTimeout", limits.ReadTimeout)
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
