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

// Package sandbox proves the Sandbox controller on a real API server, with
// kube-controller-manager (garbage collection, volume binding), the
// scheduler and kwok nodes, so Pods really become Running and Ready.
package sandbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(3)) }

const timeout = 45 * time.Second

func newSandbox(ns, name string) *agentsv1beta1.Sandbox {
	return &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "agent", Image: "python:3.13",
					Ports: []corev1.ContainerPort{{ContainerPort: 8888}},
				}},
			}},
		}},
	}
}

func withVolume(sb *agentsv1beta1.Sandbox, name string) *agentsv1beta1.Sandbox {
	sb.Spec.VolumeClaimTemplates = append(sb.Spec.VolumeClaimTemplates, agentsv1beta1.PersistentVolumeClaimTemplate{
		EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: name, Labels: map[string]string{"data": name}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	})
	return sb
}

// bindVolume offers a PersistentVolume reserved for one claim: the local
// cluster has no storage provisioner, and a Pod never schedules with an
// unbound claim.
func bindVolume(t *testing.T, env *framework.Env, claim string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: env.Namespace + "-" + claim},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/tmp/agent-sandbox-test-volumes/" + env.Namespace + "/" + claim,
			}},
			ClaimRef: &corev1.ObjectReference{Namespace: env.Namespace, Name: claim},
		},
	}
	ctx := context.Background()
	if _, err := env.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
}

func create(t *testing.T, env *framework.Env, sb *agentsv1beta1.Sandbox) *agentsv1beta1.Sandbox {
	t.Helper()
	created, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(context.Background(), sb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating sandbox %s: %v", sb.Name, err)
	}
	return created
}

func update(t *testing.T, env *framework.Env, name string, mutate func(*agentsv1beta1.Sandbox)) {
	t.Helper()
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		sb, err := sandboxes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		mutate(sb)
		_, err = sandboxes.Update(ctx, sb, metav1.UpdateOptions{})
		return err == nil, nil // retry conflicts with the controller's writes
	})
	if err != nil {
		t.Fatalf("updating sandbox %s: %v", name, err)
	}
}

func condition(sb *agentsv1beta1.Sandbox, t agentsv1beta1.ConditionType) *metav1.Condition {
	return meta.FindStatusCondition(sb.Status.Conditions, string(t))
}

func describe(sb *agentsv1beta1.Sandbox) string {
	s := fmt.Sprintf("podIPs=%v service=%q", sb.Status.PodIPs, sb.Status.Service)
	for _, c := range sb.Status.Conditions {
		s += fmt.Sprintf(" %s=%s/%s(%s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return s
}

// waitSandbox polls until cond holds for the Sandbox, and returns it.
func waitSandbox(t *testing.T, env *framework.Env, name, what string, cond func(*agentsv1beta1.Sandbox) bool) *agentsv1beta1.Sandbox {
	t.Helper()
	var last *agentsv1beta1.Sandbox
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = sb
		return cond(sb), nil
	})
	if err != nil {
		state := "not found"
		if last != nil {
			state = describe(last)
		}
		t.Fatalf("sandbox %s never became %s: %s", name, what, state)
	}
	return last
}

func readyIs(status metav1.ConditionStatus, reason string) func(*agentsv1beta1.Sandbox) bool {
	return func(sb *agentsv1beta1.Sandbox) bool {
		c := condition(sb, agentsv1beta1.SandboxConditionReady)
		return c != nil && c.Status == status && c.Reason == reason
	}
}

// waitGone polls until get reports NotFound.
func waitGone(t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		return err != nil && isNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("%s was never deleted", what)
	}
}
