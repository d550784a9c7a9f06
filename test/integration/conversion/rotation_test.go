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
	"encoding/pem"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// roundRobin forwards each TCP connection it accepts on 127.0.0.1 to the
// next backend in turn, like a Service in front of two replicas, and
// counts the connections each backend got.
type roundRobin struct {
	l        net.Listener
	backends []string
	next     atomic.Uint64
	counts   []atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startRoundRobin(t *testing.T, backends ...string) *roundRobin {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rr := &roundRobin{l: l, backends: backends, counts: make([]atomic.Int64, len(backends)), conns: map[net.Conn]struct{}{}}
	rr.wg.Add(1)
	go rr.serve()
	t.Cleanup(func() {
		_ = l.Close()
		rr.mu.Lock()
		for c := range rr.conns {
			_ = c.Close()
		}
		rr.mu.Unlock()
		rr.wg.Wait()
	})
	return rr
}

func (rr *roundRobin) track(c net.Conn) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.conns == nil {
		return false
	}
	rr.conns[c] = struct{}{}
	return true
}

func (rr *roundRobin) serve() {
	defer rr.wg.Done()
	for {
		in, err := rr.l.Accept()
		if err != nil {
			rr.mu.Lock()
			rr.conns = nil // closed: nothing more is tracked
			rr.mu.Unlock()
			return
		}
		i := int(rr.next.Add(1)-1) % len(rr.backends)
		out, err := net.Dial("tcp", rr.backends[i])
		if err != nil {
			_ = in.Close()
			continue
		}
		rr.counts[i].Add(1)
		if !rr.track(in) || !rr.track(out) {
			_ = in.Close()
			_ = out.Close()
			continue
		}
		rr.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer rr.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

func (rr *roundRobin) connections() []int64 {
	out := make([]int64, len(rr.counts))
	for i := range rr.counts {
		out[i] = rr.counts[i].Load()
	}
	return out
}

// servedLeaf is the certificate a replica presents on a new connection.
func servedLeaf(addr string) []byte {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate only
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

func pemDER(b []byte) []byte {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil
	}
	return block.Bytes
}

// Two replicas share the certificate Secret behind one address, as behind
// the webhook Service. The certificate reaches its renewal margin while a
// client keeps reading v1alpha1 objects, and the API server keeps opening
// new connections to both replicas: not one conversion may fail through
// the renewal, and both replicas end up serving the renewed certificate
// with random serials, the old CA still trusted. The renewal as it was
// before issue 13 (mint and serve at once, replace the caBundle with the new
// CA alone, replicas polling instead of watching), even polling every
// second instead of every 12 h, failed 9 of 72 reads here with "x509:
// certificate signed by unknown authority".
func TestAttackCertRotationTwoReplicas(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 3*time.Minute)
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	const secretName = "agent-sandbox-webhook-certs"

	// The pair in use enters its renewal margin a little after start-up.
	now := time.Now()
	old, err := conversion.NewCertsUntil(nil, ips, now, now.Add(conversion.DefaultRenewBefore+20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	secrets := env.Kube.CoreV1().Secrets(env.Namespace)
	if _, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"ca.crt": old.CA, "tls.crt": old.Cert, "tls.key": old.Key},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Short idle connections: the API server reconnects after every pause
	// of the reader below, and the forwarder sends each new connection to
	// the other replica.
	limits := conversion.DefaultLimits()
	limits.IdleTimeout = 150 * time.Millisecond
	var replicas []string
	listeners := make([]net.Listener, 2)
	for i := range listeners {
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, listeners[i].Addr().String())
	}
	rr := startRoundRobin(t, replicas...)
	endpoint := conversion.Endpoint{URL: "https://" + rr.l.Addr().String() + "/convert"}
	for i, l := range listeners {
		_, rctx := ktesting.NewTestContext(t)
		rctx, cancel := context.WithCancel(rctx)
		rot := &conversion.CertRotator{
			Kube: env.ControllerKube, CRDs: env.ControllerKube.ApiextensionsV1(), Namespace: env.Namespace, Secret: secretName,
			IPs: ips, Endpoint: endpoint,
			PromoteAfter: 3 * time.Second, CheckInterval: time.Second,
		}
		if err := rot.Start(rctx); err != nil {
			cancel()
			t.Fatalf("replica %d: %v", i, err)
		}
		done := make(chan error, 1)
		go func() { done <- conversion.Serve(rctx, l, rot.GetCertificate, limits) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
	}
	betaSandbox(t, ctx, env, "read-me")

	// The reader: bursts of v1alpha1 reads with pauses longer than the
	// idle timeout, on a client that is not rate limited.
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reader := dyn.Resource(agentsv1alpha1.SandboxesResource).Namespace(env.Namespace)
	var reads, failed atomic.Int64
	var firstErr atomic.Value
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			for range 3 {
				_, err := reader.Get(ctx, "read-me", metav1.GetOptions{})
				if err == nil {
					_, err = reader.List(ctx, metav1.ListOptions{})
				}
				reads.Add(1)
				if err != nil && ctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
			select {
			case <-stopReading:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	stop := func() {
		select {
		case <-stopReading:
		default:
			close(stopReading)
		}
		<-readerDone
	}
	defer stop()

	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return cond(), nil
		}); err != nil {
			t.Fatalf("%s never happened (reads %d, failed %d, first error %v)", what, reads.Load(), failed.Load(), firstErr.Load())
		}
	}
	secret := func() *corev1.Secret {
		s, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return &corev1.Secret{}
		}
		return s
	}
	poll("a renewal", func() bool {
		return !bytes.Equal(secret().Data["tls.crt"], old.Cert) || len(secret().Data["next-tls.crt"]) > 0
	})
	readsBefore := reads.Load()
	poll("the switch to the renewed pair", func() bool {
		s := secret()
		return !bytes.Equal(s.Data["tls.crt"], old.Cert) && len(s.Data["next-tls.crt"]) == 0
	})
	renewed := secret()
	leaf := pemDER(renewed.Data["tls.crt"])
	poll("both replicas serving the renewed pair", func() bool {
		return bytes.Equal(servedLeaf(replicas[0]), leaf) && bytes.Equal(servedLeaf(replicas[1]), leaf)
	})
	// Keep reading over fresh connections to both replicas.
	after := rr.connections()
	readsAfter := reads.Load()
	poll("new connections to both replicas after the switch", func() bool {
		now := rr.connections()
		return now[0] > after[0]+1 && now[1] > after[1]+1 && reads.Load() > readsAfter+20
	})
	stop()

	t.Logf("reads: %d (%d before the renewal started), failed: %d; connections per replica: %v", reads.Load(), readsBefore, failed.Load(), rr.connections())
	if readsBefore == 0 {
		t.Error("no read ran before the renewal: the test did not exercise it")
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d v1alpha1 reads failed across the renewal; first: %v", n, reads.Load(), firstErr.Load())
	}
	crd, err := env.APIExtension.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, conversion.CRDNames[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := crd.Spec.Conversion.Webhook.ClientConfig.CABundle
	if !conversion.BundleHas(bundle, renewed.Data["ca.crt"]) || !conversion.BundleHas(bundle, old.CA) {
		t.Error("after the renewal the caBundle must trust the new CA and still the old one (until it expires)")
	}
	for _, der := range [][]byte{leaf, pemDER(renewed.Data["ca.crt"])} {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if c.SerialNumber.BitLen() < 64 {
			t.Errorf("%s has serial %s; want 128 random bits", c.Subject.CommonName, c.SerialNumber)
		}
	}
}
