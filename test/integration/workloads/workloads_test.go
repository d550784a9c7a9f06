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

// Package workloads proves the test bed's own promises, which every
// controller test relies on: Pods are scheduled to kwok fake nodes and
// become Running and Ready with loopback IPs, and the garbage collector
// deletes dependents of our custom resources.
package workloads

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(3)) }

var loopback = netip.MustParsePrefix("127.0.0.0/8")

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func TestPodsRunOnFakeNodesWithLoopbackIPs(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	pods := env.Kube.CoreV1().Pods(env.Namespace)

	const n = 6
	for i := range n {
		if _, err := pods.Create(ctx, pod(env.Namespace, "p"+string(rune('a'+i))), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var list *corev1.PodList
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		list, err = pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && isReady(&p) && p.Status.PodIP != "" {
				ready++
			}
		}
		return ready == n, nil
	})
	if err != nil {
		t.Fatalf("pods did not all become Running and Ready: %v", err)
	}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Spec.NodeName, "fake-node-") {
			t.Errorf("pod %s on node %q, want a fake node", p.Name, p.Spec.NodeName)
			continue
		}
		node, err := env.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Each node hands out IPs from its own loopback pod CIDR.
		cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || !loopback.Contains(cidr.Addr()) {
			t.Errorf("node %s pod CIDR %q is not inside 127.0.0.0/8", node.Name, node.Spec.PodCIDR)
			continue
		}
		for _, ip := range p.Status.PodIPs {
			addr, err := netip.ParseAddr(ip.IP)
			if err != nil || !cidr.Contains(addr) {
				t.Errorf("pod %s has IP %q outside its node's CIDR %s", p.Name, ip.IP, cidr)
			}
		}
	}
}

func isReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

// TestGarbageCollectionOfCustomResourceDependents deletes a Sandbox that
// controls a Pod and expects kube-controller-manager to delete the Pod:
// the cleanup model of every controller here.
func TestGarbageCollectionOfCustomResourceDependents(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace

	sb := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: pod(ns, "x").Spec},
		}},
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(ns).Create(ctx, sb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := pod(ns, "dependent")
	dependent.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(sb, agentsv1beta1.SandboxGroupVersionKind)}
	if _, err := env.Kube.CoreV1().Pods(ns).Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Agents.AgentsV1beta1().Sandboxes(ns).Delete(ctx, sb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 45*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.CoreV1().Pods(ns).Get(ctx, "dependent", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("pod controlled by a deleted Sandbox was not garbage collected: %v", err)
	}
}
