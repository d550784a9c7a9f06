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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// writeStatus reports the Pod as the kubelet would for a Pod whose
// containers are all the one runtime: every container of the spec
// mirrors the runtime's state, and init containers count as completed.
// Nothing is written before the runtime first answered (the Pod stays
// Pending as scheduled) unless a run already ended, so a Pod never shows
// Running with an address nothing answers on. The write is skipped when
// nothing changed, and timestamps move only on transitions.
func (n *Node) writeStatus(ctx context.Context, pod *corev1.Pod, rec *record, healthy bool) error {
	if !rec.Healthy && rec.LastExit == nil && rec.Phase == "" {
		return nil
	}
	// Times go through the API at second precision; computed in it, an
	// unchanged status compares equal to the stored one.
	status := desiredStatus(pod, rec, healthy, metav1.Now().Rfc3339Copy())
	if equality.Semantic.DeepEqual(&pod.Status, status) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	if _, err := n.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated pod status", "phase", status.Phase, "ready", healthy, "ip", rec.IP, "restarts", rec.Restarts)
	return nil
}

// desiredStatus computes the Pod's status from its record.
func desiredStatus(pod *corev1.Pod, rec *record, healthy bool, now metav1.Time) *corev1.PodStatus {
	old := &pod.Status
	st := old.DeepCopy()
	running := rec.Process != nil && rec.Phase == ""
	ready := running && healthy

	st.HostIP, st.HostIPs = HostIP, []corev1.HostIP{{IP: HostIP}}
	st.PodIP, st.PodIPs = rec.IP, []corev1.PodIP{{IP: rec.IP}}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	switch {
	case rec.Phase != "":
		st.Phase = rec.Phase
	case rec.Healthy || rec.LastExit != nil:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}

	st.InitContainerStatuses = nil
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: *st.StartTime, FinishedAt: *st.StartTime}},
		})
	}
	st.ContainerStatuses = nil
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: rec.Restarts, Ready: ready, Started: ptr.To(running)}
		switch {
		case running:
			cs.ContainerID = fmt.Sprintf("process://%d", rec.Process.PID)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(rec.StartedAt).Rfc3339Copy()}
		case rec.Phase != "" && rec.LastExit != nil:
			cs.State.Terminated = terminated(rec.LastExit)
		default:
			reason := "ContainerCreating"
			if rec.LastExit != nil {
				reason = "CrashLoopBackOff"
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
		}
		if rec.LastExit != nil && cs.State.Terminated == nil {
			cs.LastTerminationState.Terminated = terminated(rec.LastExit)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	set := func(t corev1.PodConditionType, ok bool, reason string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason = corev1.ConditionTrue, ""
		}
		for i := range st.Conditions {
			if st.Conditions[i].Type != t {
				continue
			}
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
		st.Conditions = append(st.Conditions, c)
	}
	notReady := "ContainersNotReady"
	if rec.Phase != "" {
		notReady = "PodCompleted"
	}
	set(corev1.PodReadyToStartContainers, rec.Phase == "", "")
	set(corev1.PodInitialized, true, "")
	set(corev1.ContainersReady, ready, notReady)
	set(corev1.PodReady, ready, notReady)
	return st
}

func terminated(e *exitInfo) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: e.ExitCode, Signal: e.Signal, Reason: e.Reason,
		StartedAt: metav1.NewTime(e.StartedAt).Rfc3339Copy(), FinishedAt: metav1.NewTime(e.FinishedAt).Rfc3339Copy(),
	}
}
