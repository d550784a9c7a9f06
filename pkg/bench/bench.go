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

// Package bench measures the agent-sandbox controllers through the cluster
// API only: it creates load (ConfigMaps, a ReplicaSet, warm pools, claims),
// observes the results through watches, and reads the apiserver's and
// optionally the controller's /metrics for the price paid. Any controller
// build can be measured, since nothing here links it.
package bench

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
)

// PauseImage is the image of every Pod the bench asks for; kwok runs
// nothing, but a real cluster would, and pause is the cheapest.
const PauseImage = "registry.k8s.io/pause:3.10"

// Env is what every scenario runs against.
type Env struct {
	Kube   kubernetes.Interface
	Agents clientset.Interface
	// Ctrl reads the controller's /metrics; nil when no URL was given.
	Ctrl *ControllerMetrics
	// Procs reads the CPU time of the processes sharing the machine; nil
	// when the bench was not told where their PID files are.
	Procs *Processes
	// Progress reports on stderr.
	Progress *Progress
	// Settle is how long a scenario waits after its goal before taking the
	// closing metrics, so writes that trail the goal (a last status update)
	// are charged to it.
	Settle time.Duration
	// Timeout bounds each wait of a scenario.
	Timeout time.Duration
	// Keep leaves the namespaces behind for inspection.
	Keep bool
}

// NewEnv builds clients from cfg. The client-side rate limiter is opened
// wide: the bench must measure the server and the controller, not its own
// throttle.
func NewEnv(cfg *rest.Config, controllerMetricsURL string, progress *Progress) (*Env, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.UserAgent = "sandbox-bench"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building kube client: %w", err)
	}
	agents, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building agent-sandbox client: %w", err)
	}
	e := &Env{Kube: kube, Agents: agents, Progress: progress, Settle: 2 * time.Second, Timeout: 5 * time.Minute}
	if controllerMetricsURL != "" {
		e.Ctrl = NewControllerMetrics(controllerMetricsURL)
	}
	return e, nil
}

// namespace creates a fresh namespace for one scenario and waits for its
// default ServiceAccount: until kube-controller-manager has made it, Pods
// in the namespace are rejected, which would be charged to whoever creates
// the first Pod.
func (e *Env) namespace(ctx context.Context, scenario string) (string, error) {
	ns, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-" + scenario + "-", Labels: map[string]string{"sandbox-bench": scenario}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating namespace for %s: %w", scenario, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := e.Kube.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return "", fmt.Errorf("waiting for the default ServiceAccount in %s: %w", ns.Name, err)
	}
	return ns.Name, nil
}

// deleteNamespace deletes ns and waits until it is gone, so the next
// scenario does not share the machine with its garbage collection.
func (e *Env) deleteNamespace(ctx context.Context, ns string) {
	if e.Keep {
		e.Progress.Logf("keeping namespace %s", ns)
		return
	}
	start := time.Now()
	if err := e.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.Progress.Logf("deleting namespace %s: %v", ns, err)
		return
	}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, e.Timeout, true, func(ctx context.Context) (bool, error) {
		_, err := e.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		e.Progress.Status("cleanup: waiting for namespace %s to be deleted (%s)", ns, time.Since(start).Round(time.Second))
		return apierrors.IsNotFound(err), nil
	})
	e.Progress.Done()
	if err != nil {
		e.Progress.Logf("namespace %s still present after %s: %v", ns, e.Timeout, err)
		return
	}
	e.Progress.Logf("namespace %s deleted in %s", ns, time.Since(start).Round(100*time.Millisecond))
}

// waitUntil polls cond every 100ms, reporting what it waits for, until it
// holds or the scenario timeout passes. The conditions read watch state,
// so polling costs no API calls.
func (e *Env) waitUntil(ctx context.Context, what string, cond func() (bool, string)) error {
	start := time.Now()
	defer e.Progress.Done()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, e.Timeout, true, func(context.Context) (bool, error) {
		ok, detail := cond()
		e.Progress.Status("waiting for %s: %s (%s)", what, detail, time.Since(start).Round(100*time.Millisecond))
		return ok, nil
	})
	if err != nil {
		_, detail := cond()
		return fmt.Errorf("waiting for %s: %s after %s: %w", what, detail, time.Since(start).Round(time.Second), err)
	}
	return nil
}
