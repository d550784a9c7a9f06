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

package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultEndpoint is the OTLP/HTTP traces URL when the environment names
// none (the OpenTelemetry default).
const DefaultEndpoint = "http://localhost:4318/v1/traces"

// exporter sends spans to an OTLP/HTTP collector, protobuf bodies, as
// the specification's exporter configuration describes. It is ours, not
// otlptracehttp, for the size of what that one links (encodeRequest).
type exporter struct {
	url      string
	headers  http.Header
	gzip     bool
	timeout  time.Duration
	client   *http.Client
	stopped  atomic.Bool
	attempts int
	backoff  time.Duration
}

// exporterConfig reads the exporter's environment; the traces-specific
// variable wins over the general one.
func exporterConfig() (*exporter, error) {
	e := &exporter{url: DefaultEndpoint, headers: http.Header{}, timeout: 10 * time.Second, attempts: 3, backoff: 500 * time.Millisecond}
	if v := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		e.url = v
	} else if v := env("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		e.url = strings.TrimSuffix(v, "/") + "/v1/traces"
	}
	u, err := url.Parse(e.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP traces endpoint %q: want an http:// or https:// URL with a host", e.url)
	}
	if v := signalEnv("HEADERS"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %q is not key=value", pair)
			}
			if dec, err := url.QueryUnescape(strings.TrimSpace(val)); err == nil {
				val = dec
			}
			e.headers.Set(k, val)
		}
	}
	if v := signalEnv("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT=%q: want milliseconds > 0", v)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}
	switch v := signalEnv("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		e.gzip = true
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_COMPRESSION=%q: want gzip or none", v)
	}
	tlsCfg, err := tlsConfig()
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	e.client = &http.Client{Transport: transport, Timeout: e.timeout}
	return e, nil
}

// tlsConfig: a CA bundle (OTEL_EXPORTER_OTLP_CERTIFICATE) and a client
// certificate (…_CLIENT_CERTIFICATE and …_CLIENT_KEY) for https endpoints.
func tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f := signalEnv("CERTIFICATE"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE %s: no PEM certificate", f)
		}
		cfg.RootCAs = pool
	}
	cert, key := signalEnv("CLIENT_CERTIFICATE"), signalEnv("CLIENT_KEY")
	if (cert == "") != (key == "") {
		return nil, errors.New("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("OTLP client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// signalEnv is OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>.
func signalEnv(name string) string {
	if v := env("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
		return v
	}
	return env("OTEL_EXPORTER_OTLP_" + name)
}

// ExportSpans sends one batch. A refusal the collector may get over
// (429, 502, 503, 504, or no answer) is retried a few times with backoff
// within ctx; anything else drops the batch with an error, which the
// batch processor reports to the error handler.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.stopped.Load() || len(spans) == 0 {
		return nil
	}
	body, err := encodeRequest(spans)
	if err != nil {
		return fmt.Errorf("encoding spans: %w", err)
	}
	if e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		body = buf.Bytes()
	}
	var last error
	for i := range e.attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("exporting %d spans: %w (last: %w)", len(spans), ctx.Err(), last)
			case <-time.After(e.backoff << (i - 1)):
			}
		}
		retry, err := e.send(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return fmt.Errorf("exporting %d spans to %s: %w", len(spans), e.url, last)
}

func (e *exporter) send(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	for k, v := range e.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, err
	}
	// Read (a little of) the body so the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, fmt.Errorf("collector answered %s", resp.Status)
	}
	return false, fmt.Errorf("collector answered %s: %q", resp.Status, msg)
}

// Shutdown stops exporting; the provider has flushed before it calls this.
func (e *exporter) Shutdown(context.Context) error {
	e.stopped.Store(true)
	e.client.CloseIdleConnections()
	return nil
}
