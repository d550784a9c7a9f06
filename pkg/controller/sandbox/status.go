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

package sandbox

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func setCondition(sb *agentsv1beta1.Sandbox, t agentsv1beta1.ConditionType, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&sb.Status.Conditions, metav1.Condition{
		Type: string(t), Status: status, Reason: reason, Message: message, ObservedGeneration: sb.Generation,
	})
}

// computeConditions sets Suspended, Finished, PodScheduled and Ready from
// what this pass saw. Suspended is always present; Finished and
// PodScheduled only while they apply. LastTransitionTime moves only when a
// status flips.
func computeConditions(sb *agentsv1beta1.Sandbox, pod *corev1.Pod, owned bool, svc serviceState, childErr error, multiple bool) {
	suspended := sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended
	lookupFailed := childErr != nil && pod == nil

	// Suspended.
	switch {
	case !suspended:
		setCondition(sb, agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, agentsv1beta1.SandboxReasonNotSuspended, "Sandbox is not suspended")
	case lookupFailed:
		setCondition(sb, agentsv1beta1.SandboxConditionSuspended, metav1.ConditionUnknown, agentsv1beta1.SandboxReasonPodStateUnknown, "The Pod's state could not be determined")
	case pod == nil:
		setCondition(sb, agentsv1beta1.SandboxConditionSuspended, metav1.ConditionTrue, agentsv1beta1.SandboxReasonPodTerminated, "The Pod is gone")
	case !owned:
		setCondition(sb, agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, agentsv1beta1.SandboxReasonPodNotOwned, fmt.Sprintf("Pod %s is not owned by this Sandbox and is left alone", pod.Name))
	default:
		setCondition(sb, agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, agentsv1beta1.SandboxReasonPodTerminating, "The Pod is terminating")
	}

	// Finished: only an owned Pod in a terminal phase drives it.
	finishedReason := ""
	if owned {
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			finishedReason = agentsv1beta1.SandboxReasonPodSucceeded
		case corev1.PodFailed:
			finishedReason = agentsv1beta1.SandboxReasonPodFailed
		}
	}
	if finishedReason != "" {
		setCondition(sb, agentsv1beta1.SandboxConditionFinished, metav1.ConditionTrue, finishedReason, fmt.Sprintf("Pod phase is %s", pod.Status.Phase))
	} else {
		meta.RemoveStatusCondition(&sb.Status.Conditions, string(agentsv1beta1.SandboxConditionFinished))
	}

	// PodScheduled mirrors the owned Pod's condition.
	switch {
	case lookupFailed:
		setCondition(sb, agentsv1beta1.SandboxConditionPodScheduled, metav1.ConditionUnknown, agentsv1beta1.SandboxReasonPodSchedulingUnknown, "The Pod's state could not be determined")
	case !owned:
		meta.RemoveStatusCondition(&sb.Status.Conditions, string(agentsv1beta1.SandboxConditionPodScheduled))
	default:
		status, reason, message := metav1.ConditionUnknown, agentsv1beta1.SandboxReasonPodSchedulingUnknown, "Pod has not reported PodScheduled yet"
		for _, pc := range pod.Status.Conditions {
			if pc.Type != corev1.PodScheduled {
				continue
			}
			status, reason, message = metav1.ConditionStatus(pc.Status), pc.Reason, pc.Message
			if reason == "" {
				reason = agentsv1beta1.SandboxReasonPodSchedulingUnknown
				if status == metav1.ConditionTrue {
					reason = agentsv1beta1.SandboxReasonPodScheduled
				}
			}
		}
		setCondition(sb, agentsv1beta1.SandboxConditionPodScheduled, status, reason, message)
	}

	// Ready: first match wins.
	status, reason, message := readiness(pod, owned, svc, childErr, multiple, suspended)
	setCondition(sb, agentsv1beta1.SandboxConditionReady, status, reason, message)
}

func readiness(pod *corev1.Pod, owned bool, svc serviceState, childErr error, multiple, suspended bool) (metav1.ConditionStatus, string, string) {
	switch {
	case multiple:
		return metav1.ConditionFalse, agentsv1beta1.SandboxReasonMultiplePods, multiplePodsMessage(childErr)
	case childErr != nil:
		return metav1.ConditionFalse, agentsv1beta1.SandboxReasonReconcilerError, "Error seen: " + childErr.Error()
	case suspended && pod != nil:
		return metav1.ConditionFalse, agentsv1beta1.SandboxReasonSuspended, "Sandbox is suspending"
	case suspended:
		return metav1.ConditionFalse, agentsv1beta1.SandboxReasonSuspended, "Sandbox is suspended"
	}
	if pod == nil {
		return metav1.ConditionFalse, agentsv1beta1.SandboxReasonDependenciesNotReady, "Pod does not exist" + serviceSuffix(svc)
	}
	if owned {
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			return metav1.ConditionFalse, agentsv1beta1.SandboxReasonPodSucceeded, "Pod has succeeded"
		case corev1.PodFailed:
			return metav1.ConditionFalse, agentsv1beta1.SandboxReasonPodFailed, "Pod has failed"
		}
	}
	podReady := false
	for _, pc := range pod.Status.Conditions {
		if pc.Type == corev1.PodReady && pc.Status == corev1.ConditionTrue {
			podReady = true
		}
	}
	var msg string
	switch {
	case pod.Status.Phase != corev1.PodRunning:
		msg = fmt.Sprintf("Pod exists with phase: %s", pod.Status.Phase)
	case !podReady:
		msg = "Pod is Running but not Ready"
	case len(pod.Status.PodIPs) == 0:
		msg = "Pod is Ready but has no podIPs yet"
	default:
		msg = "Pod is Ready"
	}
	msg += serviceSuffix(svc)
	if msg == "Pod is Ready"+serviceSuffix(svc) && (!svc.required || svc.exists) && owned {
		return metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady, msg
	}
	return metav1.ConditionFalse, agentsv1beta1.SandboxReasonDependenciesNotReady, msg
}

func serviceSuffix(svc serviceState) string {
	switch {
	case !svc.required:
		return ""
	case svc.exists:
		return "; Service Exists"
	default:
		return "; Service does not exist"
	}
}

// multiplePodsMessage keeps the message stable even when the error is
// joined with others, so the condition does not flap.
func multiplePodsMessage(err error) string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if errors.Is(e, errMultiplePods) {
				return e.Error()
			}
		}
	}
	return err.Error()
}
