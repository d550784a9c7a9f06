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

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func createSandbox(t *testing.T, ns string, sb *agentsv1beta1.Sandbox) {
	t.Helper()
	if _, err := agents.AgentsV1beta1().Sandboxes(ns).Create(context.Background(), sb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func getSandbox(ctx context.Context, ns, name string) (*agentsv1beta1.Sandbox, error) {
	return agents.AgentsV1beta1().Sandboxes(ns).Get(ctx, name, metav1.GetOptions{})
}

func waitSandboxReady(t *testing.T, ns, name string) *agentsv1beta1.Sandbox {
	t.Helper()
	var sb *agentsv1beta1.Sandbox
	eventually(t, "Sandbox "+name+" Ready", func(ctx context.Context) (bool, error) {
		var err error
		sb, err = getSandbox(ctx, ns, name)
		if err != nil {
			return false, err
		}
		return isTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady), nil
	})
	return sb
}

func waitGone(t *testing.T, what string, get func(ctx context.Context) error) {
	t.Helper()
	eventually(t, what+" deleted", func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// podOf returns the Pod backing a Sandbox: same name, controlled by it.
func podOf(ctx context.Context, sb *agentsv1beta1.Sandbox) (*corev1.Pod, error) {
	pod, err := kube.CoreV1().Pods(sb.Namespace).Get(ctx, sb.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.UID != sb.UID {
		return nil, fmt.Errorf("pod %s is not controlled by its Sandbox", pod.Name)
	}
	return pod, nil
}

// TestSandboxLifecycle: a Sandbox gets a Pod and a Service, reports Ready
// with the pod's IPs and its FQDN, and takes both with it when deleted.
func TestSandboxLifecycle(t *testing.T) {
	ns := newNamespace(t)
	createSandbox(t, ns, &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "life"},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: podTemplate(), Service: ptr.To(true),
		}},
	})
	sb := waitSandboxReady(t, ns, "life")
	ctx := context.Background()
	pod, err := podOf(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pod.Labels[agentsv1beta1.SandboxNameHashLabel], agentsv1beta1.NameHash("life"); got != want {
		t.Errorf("pod name-hash label %q, want %q", got, want)
	}
	if len(sb.Status.PodIPs) == 0 || sb.Status.PodIPs[0] != pod.Status.PodIP {
		t.Errorf("status.podIPs %v, want the pod's IP %q first", sb.Status.PodIPs, pod.Status.PodIP)
	}
	if want := "life." + ns + ".svc.cluster.local"; sb.Status.ServiceFQDN != want {
		t.Errorf("status.serviceFQDN %q, want %q", sb.Status.ServiceFQDN, want)
	}
	svc, err := kube.CoreV1().Services(ns).Get(ctx, "life", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(svc); ref == nil || ref.UID != sb.UID {
		t.Errorf("service not controlled by the Sandbox: %v", svc.OwnerReferences)
	}

	if err := agents.AgentsV1beta1().Sandboxes(ns).Delete(ctx, "life", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "Pod life", func(ctx context.Context) error {
		_, err := kube.CoreV1().Pods(ns).Get(ctx, "life", metav1.GetOptions{})
		return err
	})
	waitGone(t, "Service life", func(ctx context.Context) error {
		_, err := kube.CoreV1().Services(ns).Get(ctx, "life", metav1.GetOptions{})
		return err
	})
}

// TestSuspendResume: Suspended removes the Pod and says so in the
// conditions; Running brings a new Pod and Ready back.
func TestSuspendResume(t *testing.T) {
	ns := newNamespace(t)
	createSandbox(t, ns, &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "nap"},
		Spec:       agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: podTemplate()}},
	})
	sb := waitSandboxReady(t, ns, "nap")
	ctx := context.Background()
	first, err := podOf(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}

	setMode := func(mode agentsv1beta1.SandboxOperatingMode) {
		patch := fmt.Sprintf(`{"spec":{"operatingMode":%q}}`, mode)
		if _, err := agents.AgentsV1beta1().Sandboxes(ns).Patch(ctx, "nap", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setMode(agentsv1beta1.SandboxOperatingModeSuspended)
	eventually(t, "Sandbox nap suspended without a Pod", func(ctx context.Context) (bool, error) {
		sb, err := getSandbox(ctx, ns, "nap")
		if err != nil {
			return false, err
		}
		ready := condition(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady)
		suspended := isTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionSuspended)
		_, podErr := kube.CoreV1().Pods(ns).Get(ctx, "nap", metav1.GetOptions{})
		return suspended && ready != nil && ready.Status == metav1.ConditionFalse &&
			ready.Reason == agentsv1beta1.SandboxReasonSuspended && apierrors.IsNotFound(podErr), nil
	})

	setMode(agentsv1beta1.SandboxOperatingModeRunning)
	sb = waitSandboxReady(t, ns, "nap")
	second, err := podOf(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	if second.UID == first.UID {
		t.Error("resume reused the Pod from before the suspension")
	}
	if isTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionSuspended) {
		t.Error("Suspended is still True after resuming")
	}
}

// TestSandboxExpiry: at shutdownTime the Pod goes; policy Delete removes
// the Sandbox, Retain keeps it with Ready=False/SandboxExpired.
func TestSandboxExpiry(t *testing.T) {
	ns := newNamespace(t)
	at := metav1.NewTime(time.Now().Add(5 * time.Second))
	for name, policy := range map[string]agentsv1beta1.ShutdownPolicy{
		"expire-delete": agentsv1beta1.ShutdownPolicyDelete,
		"expire-retain": agentsv1beta1.ShutdownPolicyRetain,
	} {
		createSandbox(t, ns, &agentsv1beta1.Sandbox{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: agentsv1beta1.SandboxSpec{
				SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: podTemplate()},
				Lifecycle:        agentsv1beta1.Lifecycle{ShutdownTime: &at, ShutdownPolicy: ptr.To(policy)},
			},
		})
	}
	waitGone(t, "Sandbox expire-delete", func(ctx context.Context) error {
		_, err := getSandbox(ctx, ns, "expire-delete")
		return err
	})
	eventually(t, "Sandbox expire-retain expired and kept", func(ctx context.Context) (bool, error) {
		sb, err := getSandbox(ctx, ns, "expire-retain")
		if err != nil {
			return false, err
		}
		ready := condition(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady)
		_, podErr := kube.CoreV1().Pods(ns).Get(ctx, "expire-retain", metav1.GetOptions{})
		return ready != nil && ready.Status == metav1.ConditionFalse &&
			ready.Reason == agentsv1beta1.SandboxReasonExpired && apierrors.IsNotFound(podErr), nil
	})
}
