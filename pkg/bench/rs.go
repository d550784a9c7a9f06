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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// FillResult is how fast a set of N replicas became Ready.
type FillResult struct {
	Size int `json:"size"`
	// FillSeconds runs from the create request of the owner (ReplicaSet or
	// pool) to the watch showing Size Ready members.
	FillSeconds float64 `json:"fillSeconds"`
	// Curve is Ready members over seconds since the create request.
	Curve []Point `json:"curve"`
	// MaxMembers is the most members the owner controlled at once, after
	// any watch event (pools only; must not exceed Size).
	MaxMembers int  `json:"maxMembers,omitempty"`
	Cost       Cost `json:"cost"`
	// ControllerWritesPerMember is the controller's writes over Size:
	// measured from its metrics when WritesMeasured, else estimated from
	// the apiserver's counts.
	ControllerWritesPerMember float64     `json:"controllerWritesPerMember"`
	WritesMeasured            bool        `json:"writesMeasured"`
	Violations                []Violation `json:"violations,omitempty"`
}

// ReplicaSet is the yardstick: kube-controller-manager creating n Pods on
// the same cluster, timed from the create request to n Ready Pods.
func (e *Env) ReplicaSet(ctx context.Context, n int) (*FillResult, error) {
	e.Progress.Scenario("rs")
	ns, err := e.namespace(ctx, "rs")
	if err != nil {
		return nil, err
	}
	defer e.deleteNamespace(context.WithoutCancel(ctx), ns)

	var mu sync.Mutex
	ready := map[string]bool{}
	var curve *Curve
	f := kubeinformers.NewSharedInformerFactoryWithOptions(e.Kube, 0, kubeinformers.WithNamespace(ns))
	onPod := func(obj any, deleted bool) {
		p, ok := tombstone(obj).(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if deleted || p.DeletionTimestamp != nil || !podReady(p) {
			delete(ready, p.Name)
		} else {
			ready[p.Name] = true
		}
		if curve != nil {
			curve.Set(now, len(ready))
		}
	}
	reg, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { onPod(o, false) },
		UpdateFunc: func(_, o any) { onPod(o, false) },
		DeleteFunc: func(o any) { onPod(o, true) },
	})
	if err != nil {
		return nil, err
	}
	stop, err := startWatches(ctx, f, "pod watch of "+ns, reg.HasSynced)
	if err != nil {
		return nil, err
	}
	defer stop()

	var writes writeCounter
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app": "bench-rs"}
	start := time.Now()
	mu.Lock()
	curve = NewCurve(start)
	mu.Unlock()
	writes.inc()
	if _, err := e.Kube.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(int32(n)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(),
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating replicaset: %w", err)
	}
	err = e.waitUntil(ctx, fmt.Sprintf("%d Ready pods", n), func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(ready) >= n, fmt.Sprintf("%d/%d Ready", len(ready), n)
	})
	if err != nil {
		return nil, err
	}
	time.Sleep(e.Settle)
	cost, err := win.close(ctx)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	r := &FillResult{Size: n, Curve: curve.Points(), Cost: cost}
	d, _ := curve.TimeTo(n)
	mu.Unlock()
	r.FillSeconds = round3(d.Seconds())
	// kube-controller-manager's writes for a ReplicaSet are the Pod creates
	// and its status updates; everything else is scheduler and kwok.
	r.ControllerWritesPerMember = round3((cost.APIWrites["pods POST"] + cost.APIWrites["replicasets.apps/status PUT"]) / float64(n))
	e.Progress.Logf("replicaset of %d Ready in %.2fs", n, r.FillSeconds)
	return r, nil
}

// podSpec is the Pod of both the ReplicaSet and the pool's template. A zero
// grace period lets the namespace controller finish the cleanup at once
// instead of requeueing for the default 30s; kwok ignores it otherwise.
func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "sandbox", Image: PauseImage}},
		TerminationGracePeriodSeconds: ptr.To(int64(0)),
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
