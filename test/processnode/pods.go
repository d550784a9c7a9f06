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

package processnode

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Restart back-off after a runtime exits: 1s, doubling, at most 30s (the
// kubelet's 10s to 5m is too slow to watch while developing).
const (
	initialBackoff = time.Second
	maxBackoff     = 30 * time.Second
)

func backoff(restarts int32) time.Duration {
	d := initialBackoff
	for range restarts {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}

func (n *Node) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	n.queue.Add(key)
}

func (n *Node) worker(ctx context.Context) {
	for n.processNextWorkItem(ctx) {
	}
}

func (n *Node) processNextWorkItem(ctx context.Context) bool {
	key, quit := n.queue.Get()
	if quit {
		return false
	}
	defer n.queue.Done(key)
	if err := n.sync(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing pod failed", "pod", key)
		n.queue.AddRateLimited(key)
		return true
	}
	n.queue.Forget(key)
	return true
}

// lookup finds the Pod among the Pods bound to this node's Nodes.
func (n *Node) lookup(key cache.ObjectName) (*corev1.Pod, *nodeAgent, error) {
	for _, a := range n.nodes {
		pod, err := a.pods.Pods(key.Namespace).Get(key.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return pod, a, nil
	}
	return nil, nil, nil
}

func (n *Node) agent(name string) *nodeAgent {
	for _, a := range n.nodes {
		if a.name == name {
			return a
		}
	}
	return nil
}

// recordsFor returns the records of Pods named key (a Pod deleted and
// created again under its name has a new UID, and both may be on record).
func (n *Node) recordsFor(key cache.ObjectName) []*record {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*record
	for _, r := range n.records {
		if r.Namespace == key.Namespace && r.Name == key.Name {
			out = append(out, r)
		}
	}
	return out
}

// sync converges one Pod name: the runtimes of Pods by that name that no
// longer exist are stopped and forgotten; the current Pod's runtime is
// stopped and the Pod deleted when it is terminating, and otherwise runs
// and is reported.
func (n *Node) sync(ctx context.Context, key cache.ObjectName) error {
	start := time.Now()
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pod", key)
	ctx = klog.NewContext(ctx, logger)
	defer func() { logger.V(4).Info("Finished syncing", "duration", time.Since(start)) }()

	pod, agent, err := n.lookup(key)
	if err != nil {
		return err
	}
	for _, r := range n.recordsFor(key) {
		if pod == nil || r.UID != pod.UID {
			if err := n.forget(ctx, r, n.opts.MaxGracePeriod); err != nil {
				return err
			}
		}
	}
	if pod == nil {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		grace := n.opts.MaxGracePeriod
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		n.mu.Lock()
		rec := n.records[pod.UID]
		n.mu.Unlock()
		if rec != nil {
			if err := n.forget(ctx, rec, grace); err != nil {
				return err
			}
		}
		return n.deletePod(ctx, pod)
	}
	return n.run(ctx, agent, pod, key)
}

// forget stops the runtime of a Pod that is gone or going, frees its
// address and removes its directory (emptyDir volumes with it;
// PVC-backed volumes stay).
func (n *Node) forget(ctx context.Context, rec *record, grace time.Duration) error {
	n.stopRuntime(ctx, rec, grace)
	if a := n.agent(rec.Node); a != nil {
		a.ipam.release(rec.UID)
	}
	if err := n.store.removePod(rec.UID); err != nil {
		return fmt.Errorf("removing the directory of pod %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	n.mu.Lock()
	delete(n.records, rec.UID)
	n.mu.Unlock()
	klog.FromContext(ctx).V(2).Info("Forgot pod", "uid", rec.UID, "ip", rec.IP)
	return nil
}

// run keeps the runtime of a live Pod running (or ends the Pod per its
// restartPolicy) and reports its status.
func (n *Node) run(ctx context.Context, agent *nodeAgent, pod *corev1.Pod, key cache.ObjectName) error {
	n.mu.Lock()
	rec := n.records[pod.UID]
	p := n.procs[pod.UID]
	n.mu.Unlock()
	if rec == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			// Terminal before this node knew it (its record was lost):
			// nothing to run.
			return nil
		}
		ip, err := agent.ipam.allocate(pod.UID)
		if err != nil {
			return err
		}
		_, port := runtimeContainer(pod)
		rec = &record{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, Node: agent.name, IP: ip.String(), Port: port}
		if err := n.store.save(rec); err != nil {
			agent.ipam.release(pod.UID)
			return err
		}
		n.mu.Lock()
		n.records[pod.UID] = rec
		n.mu.Unlock()
	}
	if rec.Phase != "" {
		return n.writeStatus(ctx, pod, rec, false)
	}

	// A run that ended: record how, then restart or finish.
	if rec.Process != nil && (p == nil || p.done()) {
		n.recordExit(ctx, rec, p)
		if err := n.store.save(rec); err != nil {
			return err
		}
		if phase := terminalPhase(pod.Spec.RestartPolicy, rec.LastExit.ExitCode); phase != "" {
			rec.Phase = phase
			agent.ipam.release(pod.UID)
			if err := n.store.save(rec); err != nil {
				return err
			}
			return n.writeStatus(ctx, pod, rec, false)
		}
		rec.NextStart = time.Now().Add(backoff(rec.Restarts))
		if err := n.store.save(rec); err != nil {
			return err
		}
	}
	if rec.Process == nil {
		if wait := time.Until(rec.NextStart); wait > 0 {
			n.queue.AddAfter(key, wait)
			return n.writeStatus(ctx, pod, rec, false)
		}
		if rec.LastExit != nil {
			rec.Restarts++
		}
		if err := n.startRuntime(ctx, pod, rec, key); err != nil {
			klog.FromContext(ctx).Error(err, "Starting runtime failed")
			now := time.Now()
			rec.Process = nil
			rec.LastExit = &exitInfo{ExitCode: 128, Reason: "StartError: " + err.Error(), StartedAt: now, FinishedAt: now}
			rec.NextStart = now.Add(backoff(rec.Restarts))
			if err := n.store.save(rec); err != nil {
				return err
			}
			n.queue.AddAfter(key, time.Until(rec.NextStart))
			return n.writeStatus(ctx, pod, rec, false)
		}
	}

	healthy := n.healthy(ctx, rec)
	if healthy && !rec.Healthy {
		rec.Healthy = true
		if err := n.store.save(rec); err != nil {
			return err
		}
	}
	period := n.opts.ProbePeriod
	if !healthy {
		period /= 4
	}
	n.queue.AddAfter(key, period)
	return n.writeStatus(ctx, pod, rec, healthy)
}

// recordExit notes how the run of rec.Process ended. The status of a
// process this run did not start (adopted after a restart) is unknown.
func (n *Node) recordExit(ctx context.Context, rec *record, p *runtimeProc) {
	exit := &exitInfo{ExitCode: 255, Reason: "Unknown", StartedAt: rec.StartedAt, FinishedAt: time.Now()}
	if p != nil && p.exited != nil {
		ws := p.status
		switch {
		case ws.Signaled():
			exit.Signal = int32(ws.Signal())
			exit.ExitCode = 128 + exit.Signal
			exit.Reason = "Error"
		case ws.Exited():
			exit.ExitCode = int32(ws.ExitStatus())
			exit.Reason = "Completed"
			if exit.ExitCode != 0 {
				exit.Reason = "Error"
			}
		}
	}
	// What the runtime left running dies with it, as in a container.
	if err := rec.Process.killSession(); err != nil {
		klog.FromContext(ctx).Error(err, "Killing what the runtime left running")
	}
	klog.FromContext(ctx).Info("Runtime exited", "pid", rec.Process.PID, "exitCode", exit.ExitCode, "reason", exit.Reason)
	n.mu.Lock()
	delete(n.procs, rec.UID)
	n.mu.Unlock()
	rec.Process, rec.LastExit = nil, exit
}

// terminalPhase applies restartPolicy to an exit: "" means restart.
func terminalPhase(policy corev1.RestartPolicy, exitCode int32) corev1.PodPhase {
	switch {
	case policy == corev1.RestartPolicyNever && exitCode == 0, policy == corev1.RestartPolicyOnFailure && exitCode == 0:
		return corev1.PodSucceeded
	case policy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	default:
		return ""
	}
}

// recover takes over the state directory after a restart: runtimes of
// Pods that still exist are adopted (with their addresses), the others are
// killed and their directories removed, and runtimes no record accounts
// for are killed.
func (n *Node) recover(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	records, broken, err := n.store.load()
	if err != nil {
		return fmt.Errorf("reading the state directory: %w", err)
	}
	for _, uid := range broken {
		logger.Info("Removing a pod directory without a valid record", "uid", uid)
		if err := n.store.removePod(uid); err != nil {
			return err
		}
	}
	known := map[int]bool{}
	for _, rec := range records {
		keep, err := n.adopt(rec)
		if err != nil {
			logger.Info("Not adopting a recorded pod", "pod", klog.KRef(rec.Namespace, rec.Name), "uid", rec.UID, "reason", err.Error())
		}
		if !keep {
			if err := n.forget(ctx, rec, n.opts.MaxGracePeriod); err != nil {
				return err
			}
			continue
		}
		if rec.Process != nil {
			known[rec.Process.PID] = true
		}
		logger.Info("Adopted pod", "pod", klog.KRef(rec.Namespace, rec.Name), "ip", rec.IP, "running", rec.Process != nil)
	}
	n.sweepStrays(ctx, known)
	for _, a := range n.nodes {
		pods, err := a.pods.List(labels.Everything())
		if err != nil {
			return err
		}
		for _, pod := range pods {
			n.queue.Add(cache.MetaObjectToName(pod))
		}
	}
	return nil
}

// adopt keeps rec when its Pod still exists on one of this node's Nodes
// with its address free; a runtime still running is watched again.
func (n *Node) adopt(rec *record) (bool, error) {
	a := n.agent(rec.Node)
	if a == nil {
		return false, fmt.Errorf("node %s is not served any more", rec.Node)
	}
	pod, err := a.pods.Pods(rec.Namespace).Get(rec.Name)
	if err != nil || pod.UID != rec.UID {
		return false, fmt.Errorf("the pod is gone")
	}
	ip, err := parseIP(rec.IP)
	if err != nil {
		return false, err
	}
	if rec.Phase == "" {
		if err := a.ipam.reserve(rec.UID, ip); err != nil {
			return false, err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.records[rec.UID] = rec
	if rec.Process != nil && rec.Process.alive() {
		n.procs[rec.UID] = &runtimeProc{id: *rec.Process}
	}
	return true, nil
}

// Process returns the PID of the runtime of the Pod with uid, if one runs.
func (n *Node) Process(uid types.UID) (pid int, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.procs[uid]
	if !ok || p.done() {
		return 0, false
	}
	return p.id.PID, true
}
