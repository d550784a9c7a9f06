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
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// The pool's eviction hint lives on the Sandbox; the Pod carries it exactly
// while the pool controls the Sandbox, and loses it when a claim takes it.
// A tenant's own value in the pod template always wins.
func TestEvictionHintFollowsThePool(t *testing.T) {
	pool := &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", UID: "pool-uid"}}
	claim := &extv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: "claim", UID: "claim-uid"}}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
		Name:            "pool-x",
		Annotations:     map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)},
	}}
	pod := &corev1.Pod{}
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	if pod.Annotations[agentsv1beta1.SafeToEvictAnnotation] != "true" {
		t.Fatalf("pool member's Pod annotations %v: want the eviction hint", pod.Annotations)
	}

	// Taken by a claim: owner changes and the Sandbox annotation goes.
	sb.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(claim, extv1beta1.SandboxClaimGroupVersionKind)}
	delete(sb.Annotations, agentsv1beta1.SafeToEvictAnnotation)
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	if _, ok := pod.Annotations[agentsv1beta1.SafeToEvictAnnotation]; ok {
		t.Errorf("claimed Sandbox's Pod annotations %v: the eviction hint should be gone", pod.Annotations)
	}

	// Only the pool's Sandboxes get it, even if someone annotates another.
	sb.Annotations = map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"}
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	if _, ok := pod.Annotations[agentsv1beta1.SafeToEvictAnnotation]; ok {
		t.Errorf("claim-controlled Sandbox's Pod got the eviction hint: %v", pod.Annotations)
	}

	// The template's own value wins over the pool's.
	sb.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)}
	sb.Spec.PodTemplate.ObjectMeta.Annotations = map[string]string{agentsv1beta1.SafeToEvictAnnotation: "false"}
	applyPodMetadata(sb, pod, sandboxpolicy.SandboxOwners())
	if got := pod.Annotations[agentsv1beta1.SafeToEvictAnnotation]; got != "false" {
		t.Errorf("tenant's safe-to-evict=false became %q", got)
	}
}
