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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	agentsfake "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
)

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeSelfSigned(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRunServesAndDrains(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "sandbox") })
	logger, ctx := ktesting.NewTestContext(t)
	pod := sandboxPod("team-a", "sb-1", "127.0.0.1")
	client := k8sfake.NewClientset(pod)
	o := DefaultOptions()
	o.KubeClient, o.AllowLoopbackPodIP, o.Logger = client, true, logger
	o.AgentsClient = newAgentsClient(t, sandboxFor(pod))
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeSelfSigned(t, t.TempDir(), "first")
	so := ServeOptions{
		HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", ProbeAddr: "127.0.0.1:0",
		TLSCertFile: certFile, TLSKeyFile: keyFile, TLSReloadInterval: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
	}
	ls, err := Listen(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, ls, so) }()

	c := noRedirectClient()
	probe := "http://" + ls.Probe.Addr().String()
	waitFor(t, func() bool { code, _ := get(t, c, probe+"/readyz"); return code == 200 })
	if code, body := get(t, c, probe+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("probe /healthz = %d %s", code, body)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+ls.HTTP.Addr().String()+"/", http.NoBody)
	req.Header.Set("X-Sandbox-ID", "sb-1")
	req.Header.Set("X-Sandbox-Namespace", "team-a")
	req.Header.Set("X-Sandbox-Port", be.port)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "sandbox" {
		t.Errorf("proxied body = %q", b)
	}

	// HTTPS, then a certificate rotation picked up without a restart.
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test cert
	defer tlsClient.CloseIdleConnections()
	peerCN := func() string {
		resp, err := tlsClient.Get("https://" + ls.HTTPS.Addr().String() + "/healthz")
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		resp.Body.Close()
		tlsClient.CloseIdleConnections()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := peerCN(); cn != "first" {
		t.Errorf("served CN = %q", cn)
	}
	time.Sleep(20 * time.Millisecond) // a distinct mtime
	writeSelfSigned(t, filepath.Dir(certFile), "second")
	waitFor(t, func() bool { return peerCN() == "second" })
	if got := metricValue(t, r, "sandbox_router_cert_reloads_total", "outcome", "success"); got < 1 {
		t.Errorf("cert reloads = %v", got)
	}

	if code, body := get(t, c, "http://"+ls.Metrics.Addr().String()+"/metrics"); code != 200 ||
		!strings.Contains(body, "sandbox_router_build_info{") || !strings.Contains(body, "sandbox_router_requests_total{") {
		t.Errorf("/metrics = %d, missing router metrics", code)
	}

	r.SetDraining()
	if code, body := get(t, c, probe+"/readyz"); code != 503 || body != "draining" {
		t.Errorf("/readyz while draining = %d %q", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	c.CloseIdleConnections()
	if _, err := net.DialTimeout("tcp", ls.HTTP.Addr().String(), time.Second); err == nil {
		t.Error("proxy listener still open after Run returned")
	}
}

func TestRunFailsWithoutCacheSync(t *testing.T) {
	logger, ctx := ktesting.NewTestContext(t)
	client := k8sfake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("pods is forbidden")
	})
	o := DefaultOptions()
	o.KubeClient, o.Logger = client, logger
	o.AgentsClient = agentsfake.NewSimpleClientset()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	so := ServeOptions{HTTPAddr: "127.0.0.1:0", ProbeAddr: "127.0.0.1:0", CacheSyncTimeout: 300 * time.Millisecond, ShutdownTimeout: time.Second}
	ls, err := Listen(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.Run(ctx, ls, so); err == nil || !strings.Contains(err.Error(), "did not sync") {
		t.Errorf("Run = %v, want a cache sync failure", err)
	}
}

func TestServeOptionsValidate(t *testing.T) {
	cases := map[string]struct {
		o    ServeOptions
		want string
	}{
		"no proxy listener": {ServeOptions{MetricsAddr: ":9090"}, "at least one"},
		"https without tls": {ServeOptions{HTTPSAddr: ":8443"}, "requires --tls-cert-file"},
		"ok":                {ServeOptions{HTTPAddr: ":8080"}, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.o.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestListenFailsOnConflict(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(ServeOptions{HTTPAddr: "127.0.0.1:0", ProbeAddr: l.Addr().String()}); err == nil {
		t.Error("Listen succeeded on a port in use")
	}
}

func TestNewValidatesOptions(t *testing.T) {
	if _, err := New(DefaultOptions()); err == nil {
		t.Error("New without a client succeeded")
	}
	o := DefaultOptions()
	o.KubeClient = k8sfake.NewClientset()
	if _, err := New(o); err == nil {
		t.Error("New without an agent-sandbox client succeeded")
	}
	o.AgentsClient = agentsfake.NewSimpleClientset()
	o.MaxRequestBodyBytes = -1
	if _, err := New(o); err == nil {
		t.Error("New with a negative body limit succeeded")
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errConnRefused()}}
	unreachable := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")}
	cases := map[string]struct {
		err        error
		ctx        context.Context
		reason     string
		timeout    bool
		dial, dead bool
	}{
		"refused":          {refused, ctx, reasonDial, false, true, false},
		"no route":         {unreachable, ctx, reasonDial, false, true, true},
		"dial at deadline": {refused, expired, reasonDial, true, true, false},
		"dns":              {&net.DNSError{Err: "no such host", Name: "x"}, ctx, reasonDial, false, true, false},
		"header timeout":   {errResponseHeaderTimeout, ctx, reasonTimeout, true, false, false},
		"deadline":         {context.DeadlineExceeded, expired, reasonTimeout, true, false, false},
		"eof":              {io.ErrUnexpectedEOF, ctx, reasonEOF, false, false, false},
		"other":            {errors.New("boom"), ctx, reasonOther, false, false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			reason, timeout := classify(tc.ctx, tc.err)
			if reason != tc.reason || timeout != tc.timeout {
				t.Errorf("classify = %s, %v; want %s, %v", reason, timeout, tc.reason, tc.timeout)
			}
			if isDialError(tc.err) != tc.dial || isDeadHost(tc.err) != tc.dead {
				t.Errorf("isDialError = %v, isDeadHost = %v", isDialError(tc.err), isDeadHost(tc.err))
			}
		})
	}
}

func errConnRefused() error { return syscall.ECONNREFUSED }
