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
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func strayPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// TestAdoptionNeedsConsent: an unowned Pod that merely has the Sandbox's
// name is refused (adopting it would hand it to the garbage collector);
// once it is labelled adoptable, it is adopted and serves the Sandbox.
func TestAdoptionNeedsConsent(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)
	pods := env.Kube.CoreV1().Pods(env.Namespace)

	if _, err := pods.Create(ctx, strayPod(env.Namespace, "adoptee", map[string]string{"app": "other"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := create(t, env, newSandbox(env.Namespace, "adoptee"))
	refused := waitSandbox(t, env, "adoptee", "refusing the unowned Pod", readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonReconcilerError))
	if msg := condition(refused, agentsv1beta1.SandboxConditionReady).Message; !strings.Contains(msg, "cannot adopt unowned pod adoptee") {
		t.Errorf("Ready message %q does not explain the refusal", msg)
	}
	pod, err := pods.Get(ctx, "adoptee", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		t.Fatalf("unowned Pod without consent was adopted: %+v", ref)
	}

	pod.Labels[agentsv1beta1.AdoptableLabel] = "true"
	if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSandbox(t, env, "adoptee", "Ready after adoption", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
	pod, err = pods.Get(ctx, "adoptee", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, pod, created)
	if pod.Labels[agentsv1beta1.SandboxNameHashLabel] != agentsv1beta1.NameHash("adoptee") || pod.Labels["app"] != "other" {
		t.Errorf("adopted pod labels %v: want the name hash added and its own labels kept", pod.Labels)
	}
}

func TestForeignOwnedPodIsNeverTaken(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	owner, err := env.Kube.CoreV1().ConfigMaps(env.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := strayPod(env.Namespace, "taken", map[string]string{agentsv1beta1.AdoptableLabel: "true"})
	foreign.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, corev1.SchemeGroupVersion.WithKind("ConfigMap"))}
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, env, newSandbox(env.Namespace, "taken"))
	got := waitSandbox(t, env, "taken", "refusing the foreign Pod", readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonReconcilerError))
	if msg := condition(got, agentsv1beta1.SandboxConditionReady).Message; !strings.Contains(msg, "is owned by ConfigMap owner") {
		t.Errorf("Ready message %q does not name the owner", msg)
	}
	if len(got.Status.PodIPs) != 0 {
		t.Errorf("podIPs %v taken from a foreign Pod", got.Status.PodIPs)
	}

	// Suspending must not delete it either.
	update(t, env, "taken", func(sb *agentsv1beta1.Sandbox) { sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended })
	waitSandbox(t, env, "taken", "PodNotOwned", func(sb *agentsv1beta1.Sandbox) bool {
		c := condition(sb, agentsv1beta1.SandboxConditionSuspended)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == agentsv1beta1.SandboxReasonPodNotOwned
	})
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "taken", metav1.GetOptions{}); err != nil {
		t.Errorf("suspension deleted a Pod the Sandbox does not own: %v", err)
	}
}

// TestReservedMetadataNeverReachesThePod: a tenant's template may not set
// system labels or annotations; a forged name hash must not redirect
// another Sandbox's Service.
func TestReservedMetadataNeverReachesThePod(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	sb := newSandbox(env.Namespace, "tenant")
	sb.Labels = map[string]string{agentsv1beta1.CreatedByLabel: "my-own-tool"}
	sb.Spec.PodTemplate.ObjectMeta = agentsv1beta1.PodMetadata{
		Labels: map[string]string{
			"team":                                "blue",
			agentsv1beta1.SandboxNameHashLabel:    agentsv1beta1.NameHash("victim"),
			agentsv1beta1.SandboxIDLabel:          "forged-claim",
			agentsv1beta1.WarmPoolSandboxLabel:    "forged-pool",
			"extensions.agents.x-k8s.io/anything": "x",
		},
		Annotations: map[string]string{
			"note":                                   "kept",
			agentsv1beta1.PropagatedLabelsAnnotation: "forged",
			agentsv1beta1.TraceContextAnnotation:     "{}",
		},
	}
	create(t, env, sb)
	waitSandbox(t, env, "tenant", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "tenant", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"team":                             "blue",
		agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash("tenant"),
		agentsv1beta1.CreatedByLabel:       agentsv1beta1.CreatedByUnknown,
	}
	if !mapsEqual(wantLabels, pod.Labels) {
		t.Errorf("pod labels = %v, want %v", pod.Labels, wantLabels)
	}
	wantAnnotations := map[string]string{
		"note":                                   "kept",
		agentsv1beta1.PropagatedLabelsAnnotation: "team",
		agentsv1beta1.PropagatedAnnotationsAnnotation: "note",
	}
	if !mapsEqual(wantAnnotations, pod.Annotations) {
		t.Errorf("pod annotations = %v, want %v", pod.Annotations, wantAnnotations)
	}

	// A template label removed later is removed from the Pod; one added by
	// another actor stays.
	pod.Labels["added-by-webhook"] = "yes"
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	update(t, env, "tenant", func(sb *agentsv1beta1.Sandbox) {
		delete(sb.Spec.PodTemplate.ObjectMeta.Labels, "team")
		sb.Spec.PodTemplate.ObjectMeta.Labels["tier"] = "gold"
	})
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "tenant", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, hasTeam := p.Labels["team"]
		pod = p
		return !hasTeam && p.Labels["tier"] == "gold", nil
	})
	if err != nil {
		t.Fatalf("pod labels never followed the template: %v", pod.Labels)
	}
	if pod.Labels["added-by-webhook"] != "yes" {
		t.Errorf("a label another actor added was removed: %v", pod.Labels)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestMultiplePodsFailClosed: with two Pods controlled by one Sandbox the
// controller picks neither, reports MultiplePods once, and does not retry
// in a hot loop.
func TestMultiplePodsFailClosed(t *testing.T) {
	env := framework.Setup(t)
	ctrl := framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	sb := newSandbox(env.Namespace, "twins")
	sb.Spec.Service = ptr.To(true)
	created := create(t, env, sb)
	waitSandbox(t, env, "twins", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

	twin := strayPod(env.Namespace, "twins-2", map[string]string{agentsv1beta1.SandboxNameHashLabel: agentsv1beta1.NameHash("twins")})
	twin.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(created, agentsv1beta1.SandboxGroupVersionKind)}
	if _, err := env.Kube.CoreV1().Pods(env.Namespace).Create(ctx, twin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitSandbox(t, env, "twins", "MultiplePods", readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonMultiplePods))
	if msg := condition(got, agentsv1beta1.SandboxConditionReady).Message; !strings.Contains(msg, "twins, twins-2") {
		t.Errorf("Ready message %q does not name both Pods", msg)
	}

	// The twin's own updates (scheduled, Running, Ready) each wake the
	// Sandbox once; a hot loop is syncs once they are over.
	waitPodReady(t, env, "twins-2")
	syncsBefore := reconcileCount(t, ctrl)
	time.Sleep(2 * time.Second)
	if n := reconcileCount(t, ctrl) - syncsBefore; n > 3 {
		t.Errorf("%v syncs in 2s while MultiplePods: a hot loop", n)
	}
	// Events are sent asynchronously: wait for the first, then count.
	var warnings []eventsv1.Event
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		warnings = warnings[:0]
		for _, e := range events.Items {
			if e.Reason == agentsv1beta1.SandboxReasonMultiplePods && e.Regarding.Name == "twins" {
				warnings = append(warnings, e)
			}
		}
		return len(warnings) > 0, nil
	})
	if err != nil {
		t.Fatalf("no MultiplePods event: %v", err)
	}
	for _, e := range warnings {
		if e.Type != corev1.EventTypeWarning || e.Action != "Reconciling" || e.ReportingController != "sandbox-controller" {
			t.Errorf("event %+v: want a Warning, action Reconciling, from sandbox-controller", e)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("%d MultiplePods events, want exactly 1", len(warnings))
	}
	for _, name := range []string{"twins", "twins-2"} {
		if _, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s: %v; neither may be deleted", name, err)
		}
	}
}

// waitPodReady waits until kwok reports the Pod name Running and Ready.
func waitPodReady(t *testing.T, env *framework.Env, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return p.Status.Phase == corev1.PodRunning && c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod %s not Running and Ready: %v", name, err)
	}
}

func reconcileCount(t *testing.T, ctrl *framework.Controllers) float64 {
	t.Helper()
	families, err := ctrl.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// TestNoStatusWriteWhenNothingChanged: a sync that finds nothing new
// writes nothing; every status write is an update event, and a controller
// that writes on every sync never goes quiet.
func TestNoStatusWriteWhenNothingChanged(t *testing.T) {
	env := framework.Setup(t)
	ctrl := framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)

	create(t, env, newSandbox(env.Namespace, "steady"))
	waitSandbox(t, env, "steady", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
	// Let the last status write settle, then poke the Sandbox with a
	// metadata change, which makes the controller sync it again.
	time.Sleep(500 * time.Millisecond)
	before := reconcileCount(t, ctrl)
	update(t, env, "steady", func(sb *agentsv1beta1.Sandbox) {
		if sb.Labels == nil {
			sb.Labels = map[string]string{}
		}
		sb.Labels["poke"] = "1"
	})
	poked, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return reconcileCount(t, ctrl) > before, nil
	})
	if err != nil {
		t.Fatal("the controller never synced the poked Sandbox")
	}
	time.Sleep(500 * time.Millisecond)
	after, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != poked.ResourceVersion {
		t.Errorf("resourceVersion moved %s -> %s after a sync that found nothing new", poked.ResourceVersion, after.ResourceVersion)
	}
}

// TestServiceAndVolumeAdoption: an orphan headless Service and an orphan
// PVC that consent are adopted; a Service that is not headless never is,
// because clusterIP cannot change.
func TestServiceAndVolumeAdoption(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	ctx := framework.Context(t, time.Minute)
	consent := map[string]string{agentsv1beta1.AdoptableLabel: "true"}

	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-kept", Labels: consent},
		Spec:       withVolume(newSandbox(env.Namespace, "x"), "data").Spec.VolumeClaimTemplates[0].Spec,
	}
	if _, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kept", Labels: consent},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "old", Port: 1}}},
	}
	if _, err := env.Kube.CoreV1().Services(env.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bindVolume(t, env, "data-kept")
	sb := withVolume(newSandbox(env.Namespace, "kept"), "data")
	sb.Spec.Service = ptr.To(true)
	created := create(t, env, sb)
	waitSandbox(t, env, "kept", "Ready", readyIs(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))

	gotPVC, err := env.Kube.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, "data-kept", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, gotPVC, created)
	gotSvc, err := env.Kube.CoreV1().Services(env.Namespace).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertControlledBy(t, gotSvc, created)
	if len(gotSvc.Spec.Ports) != 1 || gotSvc.Spec.Ports[0].Port != 8888 ||
		gotSvc.Spec.Selector[agentsv1beta1.SandboxNameHashLabel] != agentsv1beta1.NameHash("kept") {
		t.Errorf("adopted service ports %+v selector %v: want the Sandbox's", gotSvc.Spec.Ports, gotSvc.Spec.Selector)
	}

	// A ClusterIP Service with consent is still refused.
	clusterIP := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "routed", Labels: consent},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 80}}},
	}
	if _, err := env.Kube.CoreV1().Services(env.Namespace).Create(ctx, clusterIP, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	routed := newSandbox(env.Namespace, "routed")
	routed.Spec.Service = ptr.To(true)
	create(t, env, routed)
	got := waitSandbox(t, env, "routed", "refusing a non-headless Service", readyIs(metav1.ConditionFalse, agentsv1beta1.SandboxReasonReconcilerError))
	if msg := condition(got, agentsv1beta1.SandboxConditionReady).Message; !strings.Contains(msg, "not headless") {
		t.Errorf("Ready message %q does not explain the refusal", msg)
	}
}
