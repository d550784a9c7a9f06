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

package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/eventsink"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

// Queue is the workqueue type of every controller here.
type Queue = workqueue.TypedRateLimitingInterface[cache.ObjectName]

// NewQueue returns a named queue (its name labels the workqueue metrics)
// with per-item exponential backoff from 5ms to 1000s. There is no global
// token bucket: it would throttle retries of unrelated objects under load.
func NewQueue(name string, clk clock.WithTicker) Queue {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](5*time.Millisecond, 1000*time.Second),
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: name, Clock: clk},
	)
}

// NewEventRecorder returns an events.k8s.io sink and a recorder
// reporting as reporter (see eventsink for why not client-go's
// broadcaster). The scheme (eventScheme) holds the built-in kinds the
// controllers' Events name as related objects and those addToScheme
// registers (the API groups whose objects the controller's Events
// regard). The caller names the groups: the generated clientset's scheme
// registers every group, and the core Sandbox controller must not import
// the extensions API.
func NewEventRecorder(ctx context.Context, kube kubeclient.Interface, reporter string, m *metrics.EventMetrics,
	addToScheme ...func(*runtime.Scheme) error) (*eventsink.Sink, eventsink.EventRecorder, error) {
	scheme, err := eventScheme(addToScheme...)
	if err != nil {
		return nil, nil, err
	}
	sink := eventsink.New(kube.EventsV1(), eventsink.Options{Controller: reporter, Metrics: m})
	recorder := sink.Recorder(scheme, reporter, klog.FromContext(ctx))
	return sink, recorder, nil
}

// eventScheme is what a recorder needs to name an Event's objects: the
// kinds the controllers create, adopt and delete (Pods, Services,
// PersistentVolumeClaims, NetworkPolicies) and the caller's groups. Not
// all of client-go's scheme: each of the four controllers built one, and
// every built-in API group's types made them ~2 MiB of the controller's
// live heap.
func eventScheme(addToScheme ...func(*runtime.Scheme) error) (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range append([]func(*runtime.Scheme) error{corev1.AddToScheme, networkingv1.AddToScheme}, addToScheme...) {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

// SyncFunc reconciles one key. A nil error with requeueAfter > 0 asks to
// see the key again after that long (time-driven work); an error is
// retried with the queue's backoff.
type SyncFunc func(ctx context.Context, key cache.ObjectName) (requeueAfter time.Duration, err error)

// Workers runs a controller's sync loop: the parts every controller shares.
type Workers struct {
	// Name names the controller in logs and metrics.
	Name string
	// KeyName is the log key of the object synced ("sandbox", ...).
	KeyName string
	Queue   Queue
	Events  *eventsink.Sink
	Synced  []cache.InformerSynced
	Metrics *metrics.ReconcileMetrics
	Clock   clock.PassiveClock
	Sync    SyncFunc
}

// Run starts writing Events, waits for the caches, and runs workers
// goroutines that sync keys until ctx is done. Then it shuts the queue
// down (releasing idle workers), waits for the syncs in flight, and
// returns.
func (w *Workers) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer w.Queue.ShutDown()

	logger := klog.FromContext(ctx)
	var recording sync.WaitGroup
	defer recording.Wait()
	eventsCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	recording.Go(func() { w.Events.Run(eventsCtx) })
	logger.Info("Starting controller", "controller", w.Name, "workers", workers)
	w.Metrics.Init(w.Name)
	defer logger.Info("Shutting down controller", "controller", w.Name)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, w.Synced...) {
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for w.processNext(ctx) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	w.Queue.ShutDown()
	wg.Wait()
}

// processNext syncs one key with the key in the logger, records the
// outcome, and requeues as asked: with backoff after an error, after the
// delay for time-driven work (forgetting past failures).
func (w *Workers) processNext(ctx context.Context) bool {
	key, quit := w.Queue.Get()
	if quit {
		return false
	}
	defer w.Queue.Done(key)
	start := w.Clock.Now()
	logger := klog.LoggerWithValues(klog.FromContext(ctx), w.KeyName, key)
	requeue, err := w.Sync(klog.NewContext(ctx, logger), key)
	result := metrics.ResultSuccess
	switch {
	case err != nil:
		result = metrics.ResultError
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing failed", "controller", w.Name, "key", key)
		w.Queue.AddRateLimited(key)
	case requeue > 0:
		result = metrics.ResultRequeueAfter
		w.Queue.Forget(key)
		w.Queue.AddAfter(key, requeue)
	default:
		w.Queue.Forget(key)
	}
	w.Metrics.Observe(w.Name, result, start)
	logger.V(4).Info("Finished syncing", "duration", w.Clock.Since(start), "requeueAfter", requeue)
	return true
}

// EnqueueKey adds the key of obj (tombstones unwrapped) to queue.
func EnqueueKey(queue Queue, obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	queue.Add(key)
}

// EnqueueSelf is the event handler of a controller's own kind: every
// add, update and delete queues the object's key.
func EnqueueSelf(queue Queue) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { EnqueueKey(queue, obj) },
		UpdateFunc: func(_, obj any) { EnqueueKey(queue, obj) },
		DeleteFunc: func(obj any) { EnqueueKey(queue, obj) },
	}
}
