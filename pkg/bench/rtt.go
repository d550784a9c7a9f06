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

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// RTTResult is the floor: one API write and its watch event.
type RTTResult struct {
	N       int     `json:"n"`
	Latency Summary `json:"latency"`
	// Paced are round trips on the same idle cluster one every
	// pacedRTTInterval, the pace of a steady 10/s run's claims: a write
	// that follows the last one at once finds the API server's and the
	// watch's goroutines and threads awake, one sent after a pause does
	// not, and a claim's writes are sent after a pause.
	Paced *Summary `json:"paced,omitempty"`
	Cost  Cost     `json:"cost"`
}

// pacedRTTInterval spaces the rtt scenario's paced round trips: the
// interval between a steady 10/s run's claims.
const pacedRTTInterval = 100 * time.Millisecond

// RTT creates n ConfigMaps one after another and times each from the start
// of its create request to its ADDED event on a watch. Every controller
// reaction needs at least one such round trip, so the other latencies are
// judged in multiples of its p50.
func (e *Env) RTT(ctx context.Context, n int) (*RTTResult, error) {
	e.Progress.Scenario("rtt")
	ns, err := e.namespace(ctx, "rtt")
	if err != nil {
		return nil, err
	}
	defer e.deleteNamespace(context.WithoutCancel(ctx), ns)
	probe, err := e.startRTTProbe(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer probe.stop()

	var writes writeCounter
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		d, err := probe.roundTrip(ctx, fmt.Sprintf("rtt-%05d", i), &writes)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
		if (i+1)%50 == 0 || i+1 == n {
			e.Progress.Status("round trips: %d/%d", i+1, n)
		}
	}
	paced, err := probe.paced(ctx, max(n/4, 20), &writes)
	if err != nil {
		return nil, err
	}
	e.Progress.Done()
	cost, err := win.close(ctx)
	if err != nil {
		return nil, err
	}
	r := &RTTResult{N: n, Latency: Summarize(lat), Paced: &paced, Cost: cost}
	e.Progress.Logf("rtt p50 %.2fms p99 %.2fms over %d writes; one every %v: p50 %.2fms", r.Latency.P50Ms, r.Latency.P99Ms, n, pacedRTTInterval, paced.P50Ms)
	return r, nil
}

// rttProbe times ConfigMap creates in one namespace to their ADDED event
// on its own watch.
type rttProbe struct {
	env  *Env
	ns   string
	mu   sync.Mutex
	seen map[string]chan time.Time
	stop func()
}

// startRTTProbe starts the probe's watch of ns and waits for it to sync.
func (e *Env) startRTTProbe(ctx context.Context, ns string) (*rttProbe, error) {
	p := &rttProbe{env: e, ns: ns, seen: map[string]chan time.Time{}}
	f := kubeinformers.NewSharedInformerFactoryWithOptions(e.Kube, 0, kubeinformers.WithNamespace(ns))
	inf := f.Core().V1().ConfigMaps().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		now := time.Now()
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			select {
			case p.waiter(cm.Name) <- now:
			default:
			}
		}
	}})
	if err != nil {
		return nil, err
	}
	if p.stop, err = startWatches(ctx, f, "configmap watch of "+ns, reg.HasSynced); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *rttProbe) waiter(name string) chan time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.seen[name]
	if !ok {
		ch = make(chan time.Time, 1)
		p.seen[name] = ch
	}
	return ch
}

// roundTrip creates the ConfigMap name and returns the time from the start
// of the create to its ADDED event; writes counts the create as the
// bench's own.
func (p *rttProbe) roundTrip(ctx context.Context, name string, writes *writeCounter) (time.Duration, error) {
	ch := p.waiter(name)
	defer func() {
		p.mu.Lock()
		delete(p.seen, name)
		p.mu.Unlock()
	}()
	start := time.Now()
	writes.inc()
	if _, err := p.env.Kube.CoreV1().ConfigMaps(p.ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"probe": name},
	}, metav1.CreateOptions{}); err != nil {
		return 0, fmt.Errorf("creating configmap %s: %w", name, err)
	}
	select {
	case at := <-ch:
		return at.Sub(start), nil
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("configmap %s never appeared on the watch", name)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// paced times n round trips, one every pacedRTTInterval.
func (p *rttProbe) paced(ctx context.Context, n int, writes *writeCounter) (Summary, error) {
	tick := time.NewTicker(pacedRTTInterval)
	defer tick.Stop()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return Summary{}, ctx.Err()
		}
		d, err := p.roundTrip(ctx, fmt.Sprintf("rtt-paced-%05d", i), writes)
		if err != nil {
			return Summary{}, err
		}
		lat = append(lat, d)
	}
	return Summarize(lat), nil
}

// loadedRTTInterval spaces the round trips a steady run times while its
// claims are sent: 2 writes a second beside the ~100 of 10 claims/s.
const loadedRTTInterval = 500 * time.Millisecond

// probeUnderLoad times a round trip every loadedRTTInterval in ns until
// the returned function is called, which returns their summary: the rtt
// under the load of the run, beside the idle one of the rtt scenario.
func (e *Env) probeUnderLoad(ctx context.Context, ns, prefix string, writes *writeCounter) (func() *Summary, error) {
	probe, err := e.startRTTProbe(ctx, ns)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var lat []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(loadedRTTInterval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			d, err := probe.roundTrip(ctx, fmt.Sprintf("rtt-%s%05d", prefix, i), writes)
			if err != nil {
				if ctx.Err() == nil {
					e.Progress.Logf("rtt under load: %v", err)
				}
				continue
			}
			lat = append(lat, d)
		}
	}()
	return func() *Summary {
		cancel()
		<-done
		probe.stop()
		if len(lat) == 0 {
			return nil
		}
		s := Summarize(lat)
		return &s
	}, nil
}
