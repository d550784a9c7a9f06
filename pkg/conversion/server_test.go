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
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

// serveLoopback serves the webhook on 127.0.0.1 until the test ends and
// returns its address and a TLS client config that trusts it.
func serveLoopback(tb testing.TB) (string, *tls.Config) {
	tb.Helper()
	certs, err := NewCerts(nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	getCert, err := StaticCert(certs)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(tb)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, getCert, DefaultLimits()) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("webhook server: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certs.CA)
	return l.Addr().String(), &tls.Config{RootCAs: pool}
}

// The webhook negotiates HTTP/2 with a client that offers it, as the API
// server's does, and must keep doing so. Over HTTP/1.1 a server closing an
// idle kept-alive connection (its idle timeout, or Shutdown in a rolling
// restart) races a client that has just sent a review on it, and Go's
// transport does not retry a POST that may have been written: the API
// server fails the conversion with EOF (seen once as a flake of
// TestAttackCertRotationTwoReplicas when the webhook was HTTP/1.1 only).
// Over HTTP/2 the GOAWAY names the last stream taken and the client
// retries the rest on a new connection.
func TestServeSpeaksHTTP2(t *testing.T) {
	addr, tlsConfig := serveLoopback(t)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: tlsConfig.RootCAs, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Errorf("negotiated %q with a client offering h2 and http/1.1, want h2", got)
	}

	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}}
	body := reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1alpha1", poolMemberJSON)
	resp, err := c.Post("https://"+addr+"/convert", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("a review answered %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
}

// BenchmarkServeReview is one review of one pool member through the served
// webhook over loopback TLS, on a kept-alive connection from a client that
// offers HTTP/2 as the API server's does: the transport's cost on top of
// BenchmarkHandleReview, client and server together in this process
// (HTTP/2: 229–393 µs of CPU per review in four runs, HTTP/1.1 177–271 µs;
// HTTP/1.1 was not kept, see TestServeSpeaksHTTP2).
func BenchmarkServeReview(b *testing.B) {
	addr, tlsConfig := serveLoopback(b)
	url := "https://" + addr + "/convert"
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}}
	body := reviewOf(b, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1alpha1", poolMemberJSON)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for b.Loop() {
		resp, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %s", resp.Status)
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	// CPU, not wall time: what a review costs the two processes it
	// stands for, whatever else the machine runs.
	cpu := after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
}
