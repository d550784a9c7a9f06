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
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2/ktesting"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/conversion"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// serveWebhook serves the real webhook server on 127.0.0.1 with the given
// certificate source and limits until the test ends.
func serveWebhook(t *testing.T, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), limits conversion.Limits) string {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- conversion.Serve(ctx, l, getCert, limits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	return l.Addr().String()
}

// staticWebhook serves one fresh pair with limits and points the CRDs at
// it; it returns the address and the CA to trust.
func staticWebhook(t *testing.T, env *framework.Env, limits conversion.Limits) (string, *x509.CertPool) {
	t.Helper()
	certs, err := conversion.NewCerts(nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	getCert, err := conversion.StaticCert(certs)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWebhook(t, getCert, limits)
	if err := conversion.InjectCABundle(framework.Context(t, time.Minute), env.ControllerKube.ApiextensionsV1(), certs.CA,
		conversion.Endpoint{URL: "https://" + addr + "/convert"}); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certs.CA)
	return addr, pool
}

// betaSandbox creates a Sandbox through v1beta1 and waits until it reads
// as v1alpha1, which needs the webhook.
func betaSandbox(t *testing.T, ctx context.Context, env *framework.Env, name string) dynamic.ResourceInterface {
	t.Helper()
	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		}},
	}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alpha := env.Dynamic.Resource(agentsv1alpha1.SandboxesResource).Namespace(env.Namespace)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := alpha.Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("v1alpha1 reads never started to work through the webhook")
	}
	return alpha
}

// junk is an endless body that stops when ctx is done.
type junk struct{ ctx context.Context }

func (j junk) Read(p []byte) (int, error) {
	if j.ctx.Err() != nil {
		return 0, j.ctx.Err()
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// trickle sends a little, then one byte at a time, until ctx is done.
type trickle struct {
	ctx  context.Context
	sent int
}

func (t *trickle) Read(p []byte) (int, error) {
	if t.sent >= 1024 {
		select {
		case <-t.ctx.Done():
			return 0, t.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		p = p[:1]
	} else {
		p = p[:min(len(p), 1024-t.sent)]
	}
	for i := range p {
		p[i] = 'x'
	}
	t.sent += len(p)
	return len(p), nil
}

// heapWatch samples the heap until stop; when it grows past limit over
// where it started, it calls exceeded once (the test then stops the
// attack instead of exhausting the machine).
func heapWatch(limit uint64, exceeded func()) (peak func() uint64, stop func()) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var growth atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var once sync.Once
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > growth.Load() {
				growth.Store(ms.HeapAlloc - base)
			}
			if growth.Load() > limit {
				once.Do(exceeded)
			}
		}
	}()
	var stopOnce sync.Once
	return growth.Load, func() { stopOnce.Do(func() { close(done); <-finished }) }
}

// Many Pods post large reviews as fast as loopback allows, and others
// declare large reviews and trickle them: the webhook's memory stays
// bounded, excess reviews are shed with 503 at once, and the API server's
// own conversions keep succeeding throughout. Before issue 13 the server
// read every post whole (64 MiB cap, no bound in flight): the heap passed
// 320 MiB within seconds and nothing was shed.
func TestAttackWebhookMemoryFlood(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 3*time.Minute)
	limits := conversion.DefaultLimits()
	addr, pool := staticWebhook(t, env, limits)
	alpha := betaSandbox(t, ctx, env, "target")

	const (
		fast, slow = 24, 8
		declared   = 30 << 20 // under the cap: only the admission bounds these
		heapLimit  = 320 << 20
	)
	attack, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	var blewUp atomic.Bool
	peak, stopWatch := heapWatch(heapLimit, func() { blewUp.Store(true); stopAttack() })
	defer stopWatch()

	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 0, MaxIdleConnsPerHost: fast + slow}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var mu sync.Mutex
	statuses := map[int]int{}
	var shed atomic.Int64
	post := func(body io.Reader) {
		req, err := http.NewRequestWithContext(attack, http.MethodPost, "https://"+addr+"/convert", body)
		if err != nil {
			return
		}
		req.ContentLength = declared
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		mu.Lock()
		statuses[resp.StatusCode]++
		mu.Unlock()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			shed.Add(1)
		}
	}
	var attackers sync.WaitGroup
	for i := range fast + slow {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for attack.Err() == nil {
				if i < fast {
					post(io.LimitReader(junk{attack}, declared))
				} else {
					post(&trickle{ctx: attack})
				}
			}
		}()
	}

	// The legitimate reads start once the webhook is shedding, so they run
	// inside the flood.
	err := wait.PollUntilContextTimeout(attack, 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return shed.Load() > 0, nil
	})
	var failures []error
	reads := 0
	if err == nil {
		for range 30 {
			if attack.Err() != nil {
				break
			}
			if _, err := alpha.Get(ctx, "target", metav1.GetOptions{}); err != nil {
				failures = append(failures, err)
			}
			if _, err := alpha.List(ctx, metav1.ListOptions{}); err != nil {
				failures = append(failures, err)
			}
			reads++
		}
	}
	stopAttack()
	attackers.Wait()
	stopWatch()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("attack answers by status: %v; shed with Retry-After: %d; heap peak over baseline: %d MiB", statuses, shed.Load(), peak()>>20)
	if blewUp.Load() {
		t.Fatalf("the webhook's heap grew past %d MiB under the flood (attack stopped there)", heapLimit>>20)
	}
	if shed.Load() == 0 {
		t.Fatal("no review was shed with 503 + Retry-After: in-flight reviews are not bounded")
	}
	if reads < 30 {
		t.Fatalf("only %d legitimate reads ran during the flood", reads)
	}
	if len(failures) > 0 {
		t.Errorf("%d legitimate conversions through the API server failed during the flood; first: %v", len(failures), failures[0])
	}
}

// Slow clients that declare small reviews and send their bodies a byte at
// a time take the small-review slots; the read deadline cuts every one of
// them off before its body is complete, and the slots come back. Before
// issue 13 only the headers had a deadline: every client sent its whole
// body over 40 s.
func TestAttackWebhookSlowloris(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 2*time.Minute)
	limits := conversion.DefaultLimits()
	addr, pool := staticWebhook(t, env, limits)
	alpha := betaSandbox(t, ctx, env, "target")

	// More than the slots, each taking 4× the read deadline to finish.
	clients := limits.MaxInFlight + 8
	bodyBytes := int(4 * limits.ReadTimeout / (250 * time.Millisecond))
	type outcome struct {
		sent   int
		answer string
	}
	outcomes := make(chan outcome, clients)
	for range clients {
		go func() {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
			if err != nil {
				outcomes <- outcome{answer: err.Error()}
				return
			}
			defer conn.Close()
			answered := make(chan string, 1)
			go func() {
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil && line == "" {
					line = "connection closed: " + err.Error()
				}
				answered <- strings.TrimSpace(line)
			}()
			// A connection refused at once shows in the answer read above.
			_, _ = fmt.Fprintf(conn, "POST /convert HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, bodyBytes)
			sent := 0
			for ; sent < bodyBytes; sent++ {
				select {
				case a := <-answered:
					outcomes <- outcome{sent: sent, answer: a}
					return
				case <-ctx.Done():
					outcomes <- outcome{sent: sent, answer: "test timed out"}
					return
				case <-time.After(250 * time.Millisecond):
				}
				if _, err := conn.Write([]byte("x")); err != nil {
					break
				}
			}
			select {
			case a := <-answered:
				outcomes <- outcome{sent: sent, answer: a}
			case <-ctx.Done():
				outcomes <- outcome{sent: sent, answer: "test timed out"}
			}
		}()
	}
	cut := 0
	for range clients {
		o := <-outcomes
		if o.sent < bodyBytes {
			cut++
		} else {
			t.Errorf("a client trickling its body sent all %d bytes and got %q: never cut off", bodyBytes, o.answer)
		}
	}
	t.Logf("%d of %d slow clients were cut off before finishing their bodies", cut, clients)
	// Every slot is free again: the API server's reads go through.
	if _, err := alpha.Get(ctx, "target", metav1.GetOptions{}); err != nil {
		t.Errorf("a conversion after the slow clients were cut off: %v", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the test ran out of time")
	}
}
