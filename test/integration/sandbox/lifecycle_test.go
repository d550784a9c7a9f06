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
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

var isNotFound = apierrors.IsNotFound

func TestReadyWithPodIPsVolumesAndService(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	sb := withVolume(newSandbox(env.Namespace, "ready"), "workspace")
	sb.Spec.Service = ptr.To(true)
	bindVolume(t, env, "workspace-ready")
	created := create(t, env, sb)

	got := waitSandbox(t, env, "ready", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

	if len(got.Status.PodIPs) == 0 {
		t.Fatal("Ready without podIPs")
	}
	for _, ip := range got.Status.PodIPs {
		if addr, err := netip.ParseAddr(ip); err != nil || !addr.IsLoopback() {
			t.Errorf("pod IP %q is not a loopback address", ip)
		}
	}
	wantStatus := agentsv1beta1.SandboxStatus{
		Service:       "ready",
		ServiceFQDN:   "ready." + env.Namespace + ".svc.cluster.local",
		LabelSelector: "agents.x-k8s.io/sandbox-name-hash=" + agentsv1beta1.NameHash("ready"),
		PodIPs:        got.Status.PodIPs,
		NodeName:      got.Status.NodeName,
	}
	gotStatus := got.Status
	gotStatus.Conditions = nil
	if diff := cmp.Diff(wantStatus, gotStatus); diff != "" {
		t.Errorf("status (-want,+got):\n%s", diff)
	}
	if got.Status.NodeName == "" {
		t.Error("status.nodeName is empty once Ready")
	}
	for _, ct := range []agentsv1beta1.ConditionType{agentsv1beta1.SandboxConditionSuspended, agentsv1beta1.SandboxConditionPodScheduled} {
		c := condition(got, ct)
		if c == nil || c.ObservedGeneration != created.Generation {
			t.Errorf("condition %s = %+v, want present with observedGeneration %d", ct, c, created.Generation)
		}
	}
	if c := condition(got, agentsv1beta1.SandboxConditionSuspended); c.Status != metav1.ConditionFalse || c.Reason != agentsv1beta1.SandboxReasonNotSuspended {
		t.Errorf("Suspended = %s/%s, want False/NotSuspended", c.Status, c.Reason)
	}

	// The children, each controlled by the Sandbox.
	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "ready", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, pod, created)
	if pod.Labels[agentsv1beta1.SandboxNameHashLabel] != agentsv1beta1.NameHash("ready") {
		t.Errorf("pod labels %v lack the name hash", pod.Labels)
	}
	wantVolume := corev1.Volume{Name: "workspace", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "workspace-ready"}}}
	if diff := cmp.Diff([]corev1.Volume{wantVolume}, nonProjected(pod.Spec.Volumes)); diff != "" {
		t.Errorf("pod volumes (-want,+got):\n%s", diff)
	}

	pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "workspace-ready", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, pvc, created)
	if pvc.Labels["data"] != "workspace" || pvc.Labels[agentsv1beta1.SandboxNameHashLabel] != agentsv1beta1.NameHash("ready") {
		t.Errorf("pvc labels %v, want the template's and the name hash", pvc.Labels)
	}

	svc, err := env.Kube.CoreV1().Services(env.Namespace).Get(ctx, "ready", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, svc, created)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("service clusterIP %q, want headless", svc.Spec.ClusterIP)
	}
	wantPorts := []corev1.ServicePort{{Name: "p-8888-tcp", Protocol: corev1.ProtocolTCP, Port: 8888, TargetPort: intstr.FromInt32(8888)}}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("service ports (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash("ready")}, svc.Spec.Selector); diff != "" {
		t.Errorf("service selector (-want,+got):\n%s", diff)
	}
}

// nonProjected drops the service-account token volume admission adds.
func nonProjected(vols []corev1.Volume) []corev1.Volume {
	var out []corev1.Volume
	for i := range vols {
		if vols[i].Projected == nil {
			out = append(out, vols[i])
		}
	}
	return out
}

func assertControlledBy(t *testing.T, child metav1.Object, sb *agentsv1beta1.Sandbox) {
	t.Helper()
	ref := metav1.GetControllerOf(child)
	if ref == nil || ref.UID != sb.UID || ref.Kind != "Sandbox" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("%s controller ref = %+v, want the Sandbox %s with blockOwnerDeletion", child.GetName(), ref, sb.UID)
	}
}

func TestSuspendAndResumeKeepTheVolume(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)
	pods := env.Kube.CoreV1().Pods(env.Namespace)

	sb := withVolume(newSandbox(env.Namespace, "napper"), "data")
	sb.Spec.Service = ptr.To(true)
	bindVolume(t, env, "data-napper")
	create(t, env, sb)
	waitSandbox(t, env, "napper", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
	pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "data-napper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	firstPod, err := pods.Get(ctx, "napper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	update(t, env, "napper", func(sb *agentsv1beta1.Sandbox) { sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended })
	suspended := waitSandbox(t, env, "napper", "suspended", func(sb *agentsv1beta1.Sandbox) bool {
		c := condition(sb, agentsv1beta1.SandboxConditionSuspended)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == agentsv1beta1.SandboxReasonPodTerminated
	})
	if c := condition(suspended, agentsv1beta1.SandboxConditionReady); c.Status != metav1.ConditionFalse || c.Reason != agentsv1beta1.SandboxReasonSuspended {
		t.Errorf("Ready while suspended = %s/%s, want False/SandboxSuspended", c.Status, c.Reason)
	}
	if len(suspended.Status.PodIPs) != 0 || suspended.Status.NodeName != "" {
		t.Errorf("suspended status keeps podIPs %v nodeName %q", suspended.Status.PodIPs, suspended.Status.NodeName)
	}
	if suspended.Status.LabelSelector == "" || suspended.Status.Service != "napper" {
		t.Errorf("suspension cleared selector %q or service %q; both persist", suspended.Status.LabelSelector, suspended.Status.Service)
	}
	if condition(suspended, agentsv1beta1.SandboxConditionPodScheduled) != nil {
		t.Error("PodScheduled present without a Pod")
	}
	if _, err := pods.Get(ctx, "napper", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod still exists while suspended: %v", err)
	}
	if _, err := env.Kube.CoreV1().Services(env.Namespace).Get(ctx, "napper", metav1.GetOptions{}); err != nil {
		t.Errorf("service removed by suspension: %v", err)
	}

	update(t, env, "napper", func(sb *agentsv1beta1.Sandbox) { sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeRunning })
	resumed := waitSandbox(t, env, "napper", "Ready again", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
	if c := condition(resumed, agentsv1beta1.SandboxConditionSuspended); c == nil || c.Status != metav1.ConditionFalse || c.Reason != agentsv1beta1.SandboxReasonNotSuspended {
		t.Errorf("Suspended after resume = %+v, want False/NotSuspended (never removed)", c)
	}
	secondPod, err := pods.Get(ctx, "napper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secondPod.UID == firstPod.UID {
		t.Error("resume kept the old Pod; want a new one")
	}
	pvcAfter, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "data-napper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvcAfter.UID != pvc.UID {
		t.Errorf("PVC UID changed across suspend/resume: %s -> %s", pvc.UID, pvcAfter.UID)
	}
	if claim := secondPod.Spec.Volumes[0].PersistentVolumeClaim; claim == nil || claim.ClaimName != "data-napper" {
		t.Errorf("resumed pod volumes %+v, want the same claim", secondPod.Spec.Volumes)
	}
}

func TestShutdownPolicies(t *testing.T) {
	t.Run("Retain", func(t *testing.T) {
		env := framework.Setup(t)
		framework.StartSandboxController(t, env)
		ctx := framework.Context(t, time.Minute)

		sb := withVolume(newSandbox(env.Namespace, "retained"), "data")
		sb.Spec.Service = ptr.To(true)
		sb.Spec.ShutdownTime = &metav1.Time{Time: time.Now().Add(5 * time.Second)}
		bindVolume(t, env, "data-retained")
		create(t, env, sb)
		waitSandbox(t, env, "retained", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

		expired := waitSandbox(t, env, "retained", "expired and torn down", func(sb *agentsv1beta1.Sandbox) bool {
			return readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonExpired)(sb) && sb.Status.LabelSelector == ""
		})
		wantStatus := agentsv1beta1.SandboxStatus{Conditions: expired.Status.Conditions}
		if diff := cmp.Diff(wantStatus, expired.Status); diff != "" {
			t.Errorf("retained status keeps live fields (-want,+got):\n%s", diff)
		}
		if condition(expired, agentsv1beta1.SandboxConditionPodScheduled) != nil {
			t.Error("PodScheduled survived expiry")
		}
		waitGone(t, "expired pod", func(ctx context.Context) error {
			_, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "retained", metav1.GetOptions{})
			return err
		})
		waitGone(t, "expired service", func(ctx context.Context) error {
			_, err := env.Kube.CoreV1().Services(env.Namespace).Get(ctx, "retained", metav1.GetOptions{})
			return err
		})
		if _, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "data-retained", metav1.GetOptions{}); err != nil {
			t.Errorf("PVC removed by expiry: %v", err)
		}
		if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "retained", metav1.GetOptions{}); err != nil {
			t.Errorf("Retain deleted the Sandbox: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		env := framework.Setup(t)
		framework.StartSandboxController(t, env)

		sb := newSandbox(env.Namespace, "deleted")
		sb.Spec.ShutdownPolicy = ptr.To(agentsv1beta1.ShutdownPolicyDelete)
		sb.Spec.ShutdownTime = &metav1.Time{Time: time.Now().Add(5 * time.Second)}
		create(t, env, sb)
		waitSandbox(t, env, "deleted", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
		waitGone(t, "expired sandbox", func(ctx context.Context) error {
			_, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "deleted", metav1.GetOptions{})
			return err
		})
		waitGone(t, "pod of the deleted sandbox", func(ctx context.Context) error {
			_, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "deleted", metav1.GetOptions{})
			return err
		})
	})

	t.Run("already past on creation", func(t *testing.T) {
		env := framework.Setup(t)
		framework.StartSandboxController(t, env)
		ctx := framework.Context(t, time.Minute)

		sb := newSandbox(env.Namespace, "stillborn")
		sb.Spec.ShutdownTime = &metav1.Time{Time: time.Now().Add(-time.Minute)}
		create(t, env, sb)
		waitSandbox(t, env, "stillborn", "expired", readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonExpired))
		// Give the controller a chance to misbehave, then check it never
		// started a Pod for an expired Sandbox.
		time.Sleep(500 * time.Millisecond)
		if _, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "stillborn", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a Pod exists for a Sandbox expired at creation: %v", err)
		}
	})
}

func TestFinishedFollowsThePodPhase(t *testing.T) {
	for phase, reason := range map[corev1.PodPhase]string{
		corev1.PodSucceeded: agentsv1beta1.SandboxReasonPodSucceeded,
		corev1.PodFailed:    agentsv1beta1.SandboxReasonPodFailed,
	} {
		t.Run(string(phase), func(t *testing.T) {
			env := framework.Setup(t)
			framework.StartSandboxController(t, env)
			ctx := framework.Context(t, time.Minute)

			create(t, env, newSandbox(env.Namespace, "job"))
			waitSandbox(t, env, "job", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

			// The kubelet's part: the container exits.
			pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "job", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod.Status.Phase = phase
			if _, err := env.Kube.CoreV1().Pods(env.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			got := waitSandbox(t, env, "job", "finished", func(sb *agentsv1beta1.Sandbox) bool {
				c := condition(sb, agentsv1beta1.SandboxConditionFinished)
				return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason
			})
			if c := condition(got, agentsv1beta1.SandboxConditionReady); c.Status != metav1.ConditionFalse || c.Reason != reason {
				t.Errorf("Ready = %s/%s, want False/%s", c.Status, c.Reason, reason)
			}
		})
	}
}

func TestChildrenAreGarbageCollected(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	sb := withVolume(newSandbox(env.Namespace, "doomed"), "data")
	sb.Spec.Service = ptr.To(true)
	bindVolume(t, env, "data-doomed")
	create(t, env, sb)
	waitSandbox(t, env, "doomed", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "pod", func(ctx context.Context) error {
		_, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "doomed", metav1.GetOptions{})
		return err
	})
	waitGone(t, "service", func(ctx context.Context) error {
		_, err := env.Kube.CoreV1().Services(env.Namespace).Get(ctx, "doomed", metav1.GetOptions{})
		return err
	})
	// A bound PVC carries the kubernetes.io/pvc-protection finalizer, so it
	// is marked for deletion and goes once no Pod uses it.
	waitGone(t, "pvc", func(ctx context.Context) error {
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "data-doomed", metav1.GetOptions{})
		if err == nil && pvc.DeletionTimestamp != nil {
			return apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), pvc.Name)
		}
		return err
	})
}
