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

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	agentsscheme "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
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

// NewEventRecorder returns an events.k8s.io broadcaster and a recorder
// reporting as reporter. The scheme holds client-go's types and ours, so
// any of them can be the regarding or related object.
func NewEventRecorder(kube kubernetes.Interface, reporter string) (events.EventBroadcaster, events.EventRecorder, error) {
	scheme := runtime.NewScheme()
	if err := kubescheme.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	if err := agentsscheme.AddToScheme(scheme); err != nil {
		return nil, nil, err
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	return broadcaster, broadcaster.NewRecorder(scheme, reporter), nil
}

// RunWorkers starts event recording, waits for the caches, and runs
// workers goroutines that sync keys from queue until ctx is done. Then it
// shuts the queue down (releasing idle workers), waits for the syncs in
// flight, and returns.
func RunWorkers(ctx context.Context, name string, queue Queue, broadcaster events.EventBroadcaster, synced []cache.InformerSynced,
	workers int, syncFn func(context.Context, cache.ObjectName) error) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer queue.ShutDown()

	logger := klog.FromContext(ctx)
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		logger.Error(err, "Starting event recording", "controller", name)
	}
	defer broadcaster.Shutdown()
	logger.Info("Starting controller", "controller", name, "workers", workers)
	defer logger.Info("Shutting down controller", "controller", name)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, synced...) {
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for processNext(ctx, name, queue, syncFn) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
}

func processNext(ctx context.Context, name string, queue Queue, syncFn func(context.Context, cache.ObjectName) error) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	if err := syncFn(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing failed", "controller", name, "key", key)
		queue.AddRateLimited(key)
		return true
	}
	queue.Forget(key)
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
