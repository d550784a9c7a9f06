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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTerminalPhaseFollowsRestartPolicy(t *testing.T) {
	for name, tc := range map[string]struct {
		policy corev1.RestartPolicy
		exit   int32
		want   corev1.PodPhase
	}{
		"always, failed":      {policy: corev1.RestartPolicyAlways, exit: 1},
		"always, completed":   {policy: corev1.RestartPolicyAlways, exit: 0},
		"default":             {exit: 137},
		"on failure, failed":  {policy: corev1.RestartPolicyOnFailure, exit: 2},
		"on failure, success": {policy: corev1.RestartPolicyOnFailure, exit: 0, want: corev1.PodSucceeded},
		"never, failed":       {policy: corev1.RestartPolicyNever, exit: 2, want: corev1.PodFailed},
		"never, success":      {policy: corev1.RestartPolicyNever, exit: 0, want: corev1.PodSucceeded},
	} {
		t.Run(name, func(t *testing.T) {
			if got := terminalPhase(tc.policy, tc.exit); got != tc.want {
				t.Errorf("terminalPhase(%q, %d) = %q, want %q", tc.policy, tc.exit, got, tc.want)
			}
		})
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := backoff(int32(i)); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i, got, w)
		}
	}
}

// TestStatusIsStable: the status computed from a record, once stored,
// computes to itself again later, so a Ready Pod's periodic probes write
// nothing; and a readiness flip moves only the transition times of the
// conditions that flipped.
func TestStatusIsStable(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "box", Namespace: "ns", UID: uidA},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "runtime", Image: "sandbox-runtime"}, {Name: "sidecar", Image: "side"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
	}
	rec := &record{UID: uidA, IP: "127.100.0.9", Port: 8888, Process: &procIdentity{PID: 77}, StartedAt: time.Now(), Healthy: true}
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	first := desiredStatus(pod, rec, true, t0)
	if first.Phase != corev1.PodRunning || first.PodIP != rec.IP || first.HostIP != HostIP {
		t.Fatalf("phase %s, pod IP %s, host IP %s", first.Phase, first.PodIP, first.HostIP)
	}
	for _, cs := range first.ContainerStatuses {
		if !cs.Ready || cs.State.Running == nil {
			t.Errorf("container %s: ready %v, state %+v", cs.Name, cs.Ready, cs.State)
		}
	}
	if len(first.Conditions) != 5 || !ready(first) {
		t.Fatalf("conditions %+v", first.Conditions)
	}

	pod.Status = *first
	if again := desiredStatus(pod, rec, true, metav1.NewTime(t0.Add(time.Minute))); !equality.Semantic.DeepEqual(first, again) {
		t.Fatalf("an unchanged pod computes to another status:\n%+v\n%+v", first, again)
	}

	t1 := metav1.NewTime(t0.Add(2 * time.Minute))
	notReady := desiredStatus(pod, rec, false, t1)
	if ready(notReady) || notReady.Phase != corev1.PodRunning {
		t.Fatalf("a runtime that stopped answering: phase %s, ready %v", notReady.Phase, ready(notReady))
	}
	for _, c := range notReady.Conditions {
		flipped := c.Type == corev1.PodReady || c.Type == corev1.ContainersReady
		if flipped != c.LastTransitionTime.Equal(&t1) {
			t.Errorf("condition %s transition time %s (flipped: %v)", c.Type, c.LastTransitionTime, flipped)
		}
	}
}

func ready(st *corev1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
