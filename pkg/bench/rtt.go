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
	Cost    Cost    `json:"cost"`
}

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

	var mu sync.Mutex
	seen := map[string]chan time.Time{}
	waiter := func(name string) chan time.Time {
		mu.Lock()
		defer mu.Unlock()
		ch, ok := seen[name]
		if !ok {
			ch = make(chan time.Time, 1)
			seen[name] = ch
		}
		return ch
	}
	f := kubeinformers.NewSharedInformerFactoryWithOptions(e.Kube, 0, kubeinformers.WithNamespace(ns))
	inf := f.Core().V1().ConfigMaps().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		now := time.Now()
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			select {
			case waiter(cm.Name) <- now:
			default:
			}
		}
	}})
	if err != nil {
		return nil, err
	}
	stop, err := startWatches(ctx, f, "configmap watch of "+ns, reg.HasSynced)
	if err != nil {
		return nil, err
	}
	defer stop()

	var writes writeCounter
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		name := fmt.Sprintf("rtt-%05d", i)
		ch := waiter(name)
		start := time.Now()
		writes.inc()
		if _, err := e.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(i)},
		}, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating configmap %s: %w", name, err)
		}
		select {
		case at := <-ch:
			lat = append(lat, at.Sub(start))
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("configmap %s never appeared on the watch", name)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if (i+1)%50 == 0 || i+1 == n {
			e.Progress.Status("round trips: %d/%d", i+1, n)
		}
	}
	e.Progress.Done()
	cost, err := win.close(ctx)
	if err != nil {
		return nil, err
	}
	r := &RTTResult{N: n, Latency: Summarize(lat), Cost: cost}
	e.Progress.Logf("rtt p50 %.2fms p99 %.2fms over %d writes", r.Latency.P50Ms, r.Latency.P99Ms, n)
	return r, nil
}
