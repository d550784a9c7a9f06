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

package idle

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// Test plan item 1: a claimed Sandbox idle for W is Running at
// a + W + grace − 1 s (after a sync at that time), and Suspended once the
// clock passes a + W + grace, its claim saying why.
func TestIdleSuspendAfterTimeoutNotBefore(t *testing.T) {
	ie := setup(t, framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	ctx := context.Background()
	agents := ie.env.Agents.ExtensionsV1beta1()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "python", Annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "15m"}},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}},
		}}},
	}
	if _, err := agents.SandboxTemplates(ie.env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: "pool"},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(int32(1)), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
	if _, err := agents.SandboxWarmPools(ie.env.Namespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A warm claim: the takeover writes last-activity, the bind time.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := agents.SandboxWarmPools(ie.env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		return err == nil && p.Status.ReadyReplicas == 1, nil
	})
	if err != nil {
		t.Fatal("the pool never had a Ready member")
	}
	claim := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "pool"}},
	}
	if _, err := agents.SandboxClaims(ie.env.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := ie.waitClaim("agent", "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := meta.FindStatusCondition(c.Status.Conditions, "Ready")
		return r != nil && r.Status == metav1.ConditionTrue
	})
	name := c.Status.SandboxStatus.Name
	sb := ie.get(name)
	if sb.Annotations[agentsv1beta1.IdleTimeoutAnnotation] != "15m" {
		t.Fatalf("claimed Sandbox lacks the template's idle timeout: %v", sb.Annotations)
	}
	// A warm takeover starts the window at the bind (last-activity); a
	// cold Sandbox, without it, at its Ready transition.
	a, ok := agentsv1beta1.ParseLastActivity(sb.Annotations)
	if !ok {
		ready := meta.FindStatusCondition(sb.Status.Conditions, "Ready")
		if ready == nil || ready.Status != metav1.ConditionTrue {
			t.Fatalf("claim Ready but its Sandbox is not: %+v", ready)
		}
		a = ready.LastTransitionTime.Time
	}
	t.Logf("window starts at %s (last-activity present: %v)", a, ok)
	deadline := a.Add(15*time.Minute + grace)

	ie.clock.SetTime(deadline.Add(-time.Second))
	ie.syncNow(name)
	if sb := ie.get(name); sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning {
		t.Fatalf("suspended at a + W + grace − 1 s: %v", sb.Annotations)
	}

	// The timer armed for the deadline fires: no poke this time.
	ie.clock.SetTime(deadline.Add(time.Second))
	sb = ie.waitSuspended(name)
	if _, ok := sb.Annotations[agentsv1beta1.IdleSuspendedAtAnnotation]; !ok {
		t.Errorf("suspended without %s: %v", agentsv1beta1.IdleSuspendedAtAnnotation, sb.Annotations)
	}
	c = ie.waitClaim("agent", "SandboxSuspended", func(c *extv1beta1.SandboxClaim) bool {
		r := meta.FindStatusCondition(c.Status.Conditions, "Ready")
		return r != nil && r.Reason == extv1beta1.ClaimReasonSandboxSuspended
	})
	if r := meta.FindStatusCondition(c.Status.Conditions, "Ready"); !strings.Contains(r.Message, "suspended after 15m0s without requests") {
		t.Errorf("claim Ready message = %q", r.Message)
	}
}

// Test plan item 2: requests only through replica B keep the Sandbox awake
// for three windows with at most one committed write per window, counted
// from the watch; replica A, which sees no request, writes nothing.
func TestIdleTwoRouterReplicas(t *testing.T) {
	const w = time.Minute
	ie := setup(t)
	_, ra := ie.startRouter(nil)
	urlB, rb := ie.startRouter(nil)
	ie.createSandbox("busy", "1m", ra, rb)
	aw := ie.watchActivity("busy")

	if code := ie.request(urlB, "busy", "/", nil); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}
	a0 := ie.waitActivity("busy", ie.clock.Now())
	const windows = 3
	for k := 1; k <= windows; k++ {
		for range 6 {
			ie.clock.Step(10 * time.Second)
			if code := ie.request(urlB, "busy", "/", nil); code != http.StatusOK {
				t.Fatalf("request at %s: %d", ie.clock.Now(), code)
			}
		}
		// Window k has ended: its activity is recorded as a0 + kW.
		ie.waitActivity("busy", a0.Add(time.Duration(k)*w))
	}
	// Past a0 + W + grace long ago: only B's writes kept it Running.
	ie.syncNow("busy")
	if sb := ie.get("busy"); sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning {
		t.Fatalf("suspended while busy through replica B: %v", sb.Annotations)
	}
	got := aw.writes()
	if len(got) > windows+1 {
		t.Errorf("%d committed activity writes in %d windows (+ the first): %v", len(got), windows, got)
	}
	for i := 1; i < len(got); i++ {
		prev, _ := time.Parse(time.RFC3339, got[i-1])
		cur, _ := time.Parse(time.RFC3339, got[i])
		if cur.Sub(prev) < w {
			t.Errorf("committed writes %s and %s are less than W apart", got[i-1], got[i])
		}
	}
	if n := activityWrites(t, ra, "written"); n != 0 {
		t.Errorf("replica A, without requests, committed %v writes", n)
	}
	t.Logf("committed writes: %v; B written=%v conflict=%v", got, activityWrites(t, rb, "written"), activityWrites(t, rb, "conflict"))

	// Without requests, it is suspended W + grace after the last record.
	last, _ := agentsv1beta1.ParseLastActivity(ie.get("busy").Annotations)
	ie.clock.SetTime(last.Add(w + grace + time.Second))
	ie.waitSuspended("busy")
}

// Test plan item 3: one request in flight across three windows keeps the
// Sandbox awake; once it ends, the Sandbox is suspended W + grace later.
func TestIdleInFlightKeepsAwake(t *testing.T) {
	const w = time.Minute
	ie := setup(t)
	url, r := ie.startRouter(nil)
	ie.createSandbox("stream", "1m", r)
	done := make(chan int, 1)
	go func() { done <- ie.requestNoFatal(url, "stream", "/hold") }()
	<-ie.backends.held
	a0 := ie.waitActivity("stream", ie.clock.Now())
	for k := 1; k <= 3; k++ {
		ie.clock.Step(w)
		ie.waitActivity("stream", a0.Add(time.Duration(k)*w))
	}
	ie.syncNow("stream")
	if sb := ie.get("stream"); sb.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeRunning {
		t.Fatalf("suspended with a request in flight: %v", sb.Annotations)
	}
	close(ie.backends.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("held request: %d", code)
	}
	ie.clock.Step(w + grace + time.Second)
	ie.waitSuspended("stream")
}

// Test plan item 7b: requests refused by authorization (401, 403) or
// resolution (404) are not activity: the Sandbox is suspended W + grace
// after it became Ready, and last-activity is never written.
func TestAttackUnauthorizedRequestsAreNotActivity(t *testing.T) {
	const w = time.Minute
	ie := setup(t)
	authz := router.AuthorizerFunc(func(_ context.Context, r *http.Request, _, _ string) error {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			return nil
		case "":
			return router.ErrUnauthenticated
		default:
			return fmt.Errorf("%w: not this one", router.ErrForbidden)
		}
	})
	url, r := ie.startRouter(authz)
	ie.createSandbox("victim", "1m", r)
	aw := ie.watchActivity("victim")
	ready := meta.FindStatusCondition(ie.get("victim").Status.Conditions, "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue {
		t.Fatalf("routable but not Ready: %+v", ready)
	}
	deadline := ready.LastTransitionTime.Add(w + grace)
	bad := http.Header{"Authorization": {"Bearer bad"}}
	good := http.Header{"Authorization": {"Bearer good"}}
	for ie.clock.Now().Before(deadline.Add(-10 * time.Second)) {
		for _, tc := range []struct {
			name   string
			header http.Header
			want   int
		}{{"victim", nil, http.StatusUnauthorized}, {"victim", bad, http.StatusForbidden}, {"not-there", good, http.StatusNotFound}} {
			if code := ie.request(url, tc.name, "/", tc.header); code != tc.want {
				t.Fatalf("request for %s: %d, want %d", tc.name, code, tc.want)
			}
		}
		ie.clock.Step(10 * time.Second)
	}
	ie.clock.SetTime(deadline.Add(time.Second))
	sb := ie.waitSuspended("victim")
	if v, ok := sb.Annotations[agentsv1beta1.LastActivityAnnotation]; ok {
		t.Errorf("refused requests recorded activity: %s", v)
	}
	if got := aw.writes(); len(got) != 0 {
		t.Errorf("activity writes committed: %v", got)
	}
	for _, res := range []string{"written", "conflict", "forbidden", "error"} {
		if n := activityWrites(t, r, res); n != 0 {
			t.Errorf("activity writes %s = %v, want none", res, n)
		}
	}
}
