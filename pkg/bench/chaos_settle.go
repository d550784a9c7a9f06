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

package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Rules of the settled state, beyond the Checker's.
const (
	RuleLeakedPod      = "leaked-pod"
	RuleLeakedService  = "leaked-service"
	RuleLeakedPVC      = "leaked-pvc"
	RuleClaimNotReady  = "claim-not-ready"
	RulePoolNotWhole   = "pool-not-at-replicas"
	RuleComponentDied  = "component-exited"
	RuleNotSettled     = "not-settled"
	RuleControllerDied = "controller-restarted"
)

// nsState is one List of everything a chaos or soak namespace holds.
type nsState struct {
	Sandboxes []agentsv1beta1.Sandbox
	Claims    []extv1beta1.SandboxClaim
	Pools     []extv1beta1.SandboxWarmPool
	Pods      []corev1.Pod
	Services  []corev1.Service
	PVCs      []corev1.PersistentVolumeClaim
}

func (e *Env) listState(ctx context.Context, ns string) (nsState, error) {
	var st nsState
	sbs, err := e.Agents.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	cls, err := e.Agents.ExtensionsV1beta1().SandboxClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	pools, err := e.Agents.ExtensionsV1beta1().SandboxWarmPools(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	svcs, err := e.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	pvcs, err := e.Kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	st.Sandboxes, st.Claims, st.Pools, st.Pods, st.Services, st.PVCs = sbs.Items, cls.Items, pools.Items, pods.Items, svcs.Items, pvcs.Items
	return st, nil
}

// settledViolations judges a List once the load has stopped: every
// Sandbox is controlled by a pool of the run or by a live claim, every Pod,
// Service and PVC by a live Sandbox, every live claim is Ready, and every
// pool holds exactly its replicas, all Ready, in its status too. Objects
// being deleted count as still there: a settled namespace has none.
func settledViolations(st nsState, pools []string, at time.Duration) []Violation {
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{At: at, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	liveClaims := map[string]bool{}
	for i := range st.Claims {
		cl := &st.Claims[i]
		if cl.DeletionTimestamp == nil {
			liveClaims[string(cl.UID)] = true
			if !conditionTrue(cl.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()) {
				add(RuleClaimNotReady, "claim %s is not Ready (sandbox %q)", cl.Name, cl.Status.SandboxStatus.Name)
			}
		}
	}
	liveSandboxes := map[string]bool{}
	members := map[string][]string{}
	readyMembers := map[string]int{}
	for i := range st.Sandboxes {
		sb := &st.Sandboxes[i]
		ref := metav1.GetControllerOf(sb)
		deleting := sb.DeletionTimestamp != nil
		switch {
		case ref != nil && ref.Kind == extv1beta1.SandboxWarmPoolKind && slices.Contains(pools, ref.Name) && !deleting:
			members[ref.Name] = append(members[ref.Name], sb.Name)
			if conditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()) {
				readyMembers[ref.Name]++
			}
		case ref != nil && ref.Kind == extv1beta1.SandboxClaimKind && liveClaims[string(ref.UID)] && !deleting:
		default:
			add(RuleLeakedSandbox, "sandbox %s (controller %s, being deleted %v) belongs to no pool of the run and no live claim", sb.Name, refString(ref), deleting)
			continue
		}
		liveSandboxes[string(sb.UID)] = true
	}
	child := func(rule, kind string, meta metav1.Object) {
		ref := metav1.GetControllerOfNoCopy(meta)
		if ref != nil && ref.Kind == agentsv1beta1.SandboxKind && liveSandboxes[string(ref.UID)] && meta.GetDeletionTimestamp() == nil {
			return
		}
		add(rule, "%s %s (controller %s, being deleted %v) belongs to no live Sandbox", kind, meta.GetName(), refString(ref), meta.GetDeletionTimestamp() != nil)
	}
	// The binding rules of Checker.Final, on the same List.
	byName := map[string]*agentsv1beta1.Sandbox{}
	perClaim := map[string][]string{}
	for i := range st.Sandboxes {
		sb := &st.Sandboxes[i]
		byName[sb.Name] = sb
		if ref := metav1.GetControllerOfNoCopy(sb); ref != nil && ref.Kind == extv1beta1.SandboxClaimKind && sb.DeletionTimestamp == nil {
			perClaim[string(ref.UID)] = append(perClaim[string(ref.UID)], sb.Name)
		}
	}
	namedBy := map[string]string{}
	for i := range st.Claims {
		cl := &st.Claims[i]
		if names := perClaim[string(cl.UID)]; len(names) > 1 {
			add(RuleClaimControlsTwoSandboxes, "claim %s controls sandboxes %v", cl.Name, names)
		}
		name := cl.Status.SandboxStatus.Name
		if cl.DeletionTimestamp != nil || name == "" {
			continue
		}
		sb := byName[name]
		if ref := refOf(sb); sb == nil || ref == nil || ref.UID != cl.UID {
			add(RuleClaimNamesForeignSandbox, "claim %s names sandbox %s, which it does not control (controller %s)", cl.Name, name, refString(ref))
		}
		if other, ok := namedBy[name]; ok {
			add(RuleSandboxNamedByTwoClaims, "claims %s and %s both name sandbox %s", other, cl.Name, name)
		}
		namedBy[name] = cl.Name
	}
	for i := range st.Pods {
		child(RuleLeakedPod, "pod", &st.Pods[i])
	}
	for i := range st.Services {
		child(RuleLeakedService, "service", &st.Services[i])
	}
	for i := range st.PVCs {
		child(RuleLeakedPVC, "pvc", &st.PVCs[i])
	}
	for i := range st.Pools {
		p := &st.Pools[i]
		if !slices.Contains(pools, p.Name) {
			continue
		}
		want := int32(0)
		if p.Spec.Replicas != nil {
			want = *p.Spec.Replicas
		}
		n := int32(len(members[p.Name]))
		if n != want || int32(readyMembers[p.Name]) != want || p.Status.ReadyReplicas != want {
			add(RulePoolNotWhole, "pool %s wants %d: %d members, %d Ready, status readyReplicas %d", p.Name, want, n, readyMembers[p.Name], p.Status.ReadyReplicas)
		}
	}
	return out
}

func refOf(sb *agentsv1beta1.Sandbox) *metav1.OwnerReference {
	if sb == nil {
		return nil
	}
	return metav1.GetControllerOfNoCopy(sb)
}

func refString(ref *metav1.OwnerReference) string {
	if ref == nil {
		return "none"
	}
	return ref.Kind + "/" + ref.Name
}

// waitSettled lists ns until settledViolations finds nothing or timeout
// passes, and returns what was left (nil when it settled) and the last List.
func (e *Env) waitSettled(ctx context.Context, ns string, pools []string, start time.Time, timeout time.Duration, what string) ([]Violation, nsState, error) {
	var last []Violation
	var st nsState
	began := time.Now()
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		s, err := e.listState(ctx, ns)
		if err != nil {
			// The API server may still be coming back; try again.
			e.Progress.Status("%s: listing: %v", what, err)
			return false, nil
		}
		st = s
		last = settledViolations(s, pools, time.Since(start))
		e.Progress.Status("%s: %d problems left (%s)", what, len(last), time.Since(began).Round(time.Second))
		return len(last) == 0, nil
	})
	e.Progress.Done()
	if err != nil && len(last) == 0 {
		return nil, st, fmt.Errorf("%s: %w", what, err)
	}
	return last, st, nil
}
