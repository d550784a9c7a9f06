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

package clientconn

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// connCounter is an HTTP/2 API server stand-in that records the client
// connections requests arrive on.
type connCounter struct {
	mu    sync.Mutex
	conns map[string]bool
	srv   *httptest.Server
}

func newConnCounter(t *testing.T) *connCounter {
	c := &connCounter{conns: map[string]bool{}}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.conns[r.RemoteAddr] = true
		c.mu.Unlock()
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, want HTTP/2", r.Proto)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x"}}`))
	}))
	c.srv.EnableHTTP2 = true
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *connCounter) config() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	return &rest.Config{Host: c.srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, BearerToken: "secret", QPS: -1}
}

func (c *connCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

func get(t *testing.T, cfg *rest.Config, n int) {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := kube.CoreV1().Namespaces().Get(context.Background(), "x", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAPIConnectionsSpreadRequests(t *testing.T) {
	c := newConnCounter(t)
	api, watch, err := Split(c.config(), 3, true)
	if err != nil {
		t.Fatal(err)
	}
	get(t, api, 9)
	if n := c.count(); n != 3 {
		t.Errorf("9 API calls arrived on %d connections, want 3", n)
	}
	get(t, watch, 3)
	if n := c.count(); n != 4 {
		t.Errorf("after watch-config calls: %d connections, want 4 (one more, its own)", n)
	}
}

func TestDefaultSharesOneConnection(t *testing.T) {
	c := newConnCounter(t)
	api, watch, err := Split(c.config(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	get(t, api, 5)
	get(t, watch, 5)
	if n := c.count(); n != 1 {
		t.Errorf("%d connections, want the one shared HTTP/2 connection", n)
	}
}

// The dedicated transports keep the config's authentication.
func TestDedicatedTransportKeepsAuth(t *testing.T) {
	var got string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x"}}`))
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	api, _, err := Split(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, BearerToken: "secret"}, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	get(t, api, 1)
	if got != "Bearer secret" {
		t.Errorf("Authorization %q, want the config's bearer token", got)
	}
	if _, _, err := Split(&rest.Config{Host: srv.URL, Transport: http.DefaultTransport}, 2, false); err == nil {
		t.Error("a custom Transport was accepted with --api-connections")
	}
}
