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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// syncResult runs one sync of name and returns what the queue would do
// with it.
func (f *fixture) syncResult(name string) (time.Duration, error) {
	f.t.Helper()
	f.kube.ClearActions()
	f.agents.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	return f.c.sync(ctx, cache.ObjectName{Namespace: ns, Name: name})
}

// A Pod the API server refuses for what it asks (an unknown RuntimeClass,
// an exhausted quota, an invalid spec) is refused again on every retry
// until something else changes: Ready says why, one Warning Event per
// episode, and the Sandbox is tried again after refusedRequeue instead of
// with the workqueue's backoff (13 refused creates in 20 s). Once the
// cause is gone, the next try creates the Pod.
func TestSyncRefusedPodIsReportedNotRetried(t *testing.T) {
	podsResource := corev1.Resource("pods")
	tests := map[string]error{
		"unknown RuntimeClass": apierrors.NewForbidden(podsResource, "s",
			errors.New(`pod rejected: RuntimeClass "no-such-runtime-class" not found`)),
		"exhausted quota": apierrors.NewForbidden(podsResource, "s",
			errors.New("exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1")),
		"invalid": apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Pod").GroupKind(), "s",
			field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}),
	}
	for name, refusal := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s")})
			refuse := true
			f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				return refuse, nil, refusal
			})
			wantNote := fmt.Sprintf("Failed to create Pod s: %v", refusal)

			requeue, err := f.syncResult("s")
			if err != nil || requeue != refusedRequeue {
				t.Fatalf("sync = %s, %v; want %s, nil: no retry with backoff", requeue, err, refusedRequeue)
			}
			if diff := cmp.Diff([]action{{"create", "pods", "", "s"}, {"patch", "sandboxes", "status", "s"}}, f.writes()); diff != "" {
				t.Errorf("writes (-want,+got):\n%s", diff)
			}
			got := f.patchedSandbox("s")
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			want := "Error seen: creating pod s: " + refusal.Error()
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != agentsv1beta1.SandboxReasonReconcilerError || ready.Message != want {
				t.Errorf("Ready = %+v, want False/ReconcilerError %q", ready, want)
			}
			if diff := cmp.Diff([]string{"Warning FailedCreate " + wantNote}, f.events()); diff != "" {
				t.Errorf("events (-want,+got):\n%s", diff)
			}

			// The next try, as refused as the first: no status write, no
			// second Event.
			f.seed(got)
			requeue, err = f.syncResult("s")
			if err != nil || requeue != refusedRequeue {
				t.Fatalf("second sync = %s, %v; want %s, nil", requeue, err, refusedRequeue)
			}
			if diff := cmp.Diff([]action{{"create", "pods", "", "s"}}, f.writes()); diff != "" {
				t.Errorf("second pass writes (-want,+got):\n%s", diff)
			}
			if events := f.events(); len(events) != 0 {
				t.Errorf("second pass events %q, want none in the same episode", events)
			}

			// The cause goes away (the RuntimeClass is created, the quota
			// frees up): the Pod is created and Ready no longer blames it.
			refuse = false
			requeue, err = f.syncResult("s")
			if err != nil || requeue == refusedRequeue {
				t.Fatalf("sync after the cause went away = %s, %v", requeue, err)
			}
			if diff := cmp.Diff([]action{{"create", "pods", "", "s"}, {"patch", "sandboxes", "status", "s"}}, f.writes()); diff != "" {
				t.Errorf("recovery writes (-want,+got):\n%s", diff)
			}
			if r := meta.FindStatusCondition(f.patchedSandbox("s").Status.Conditions, "Ready"); r == nil || r.Reason != agentsv1beta1.SandboxReasonDependenciesNotReady {
				t.Errorf("Ready after recovery = %+v, want DependenciesNotReady while the Pod starts", r)
			}
			if diff := cmp.Diff([]string{"Normal SuccessfulCreate Created Pod s"}, f.events()); diff != "" {
				t.Errorf("recovery events (-want,+got):\n%s", diff)
			}
		})
	}
}

// A failure that may pass on the next try stays on the rate-limited retry,
// with an Event per attempt; so does a refusal that comes with one: the
// retry is needed anyway.
func TestSyncTransientCreateErrorIsRetried(t *testing.T) {
	unavailable := apierrors.NewServiceUnavailable("try later")
	tests := map[string]struct {
		service bool
		pods    error
	}{
		"Pod create unavailable":                     {pods: unavailable},
		"Pod refused, Service create unavailable":    {service: true, pods: apierrors.NewForbidden(corev1.Resource("pods"), "s", errors.New("exceeded quota"))},
		"Pod create throttled by the API server":     {pods: apierrors.NewTooManyRequests("slow down", 1)},
		"Pod create timed out":                       {pods: apierrors.NewTimeoutError("request timed out", 1)},
		"Pod create hit a conflict on the namespace": {pods: apierrors.NewConflict(corev1.Resource("pods"), "s", errors.New("try again"))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s", func(sb *agentsv1beta1.Sandbox) { sb.Spec.Service = ptr.To(tc.service) })})
			f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.pods })
			f.kube.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, unavailable })
			for attempt := range 2 {
				if _, err := f.syncResult("s"); err == nil {
					t.Fatalf("attempt %d: sync returned nil: the queue would not retry", attempt)
				}
				if events := f.events(); !tc.service && len(events) != 1 {
					t.Errorf("attempt %d: events %q, want one FailedCreate per attempt", attempt, events)
				}
				f.seed(f.patchedSandbox("s"))
			}
		})
	}
}

// A Pod refused because its namespace is being deleted (the namespace
// controller deleted the Pod before the Sandbox) is refused for good and
// the Sandbox goes next: Ready still says why, but no Event is sent (the
// namespace refuses Events too) and nothing is tried again (deleting a
// namespace of 3000 Sandboxes sent 3000 refused Events and queued 3000
// passes a minute later). A refusal for any other reason beside it keeps
// the retry.
// terminatingRefusal is the API server's answer to a Pod create in a
// namespace being deleted.
func terminatingRefusal() *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Message: `pods "s" is forbidden: unable to create new content in namespace ns because it is being terminated`,
		Details: &metav1.StatusDetails{Name: "s", Kind: "pods", Causes: []metav1.StatusCause{{
			Type: corev1.NamespaceTerminatingCause, Message: "namespace ns is being terminated", Field: "metadata.namespace"}}},
	}}
}

func TestSyncPodRefusedInTerminatingNamespaceIsFinal(t *testing.T) {
	terminating := terminatingRefusal()
	f := newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s")})
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating })

	requeue, err := f.syncResult("s")
	if err != nil || requeue != 0 {
		t.Fatalf("sync = %s, %v; want 0, nil: neither a retry nor a requeue", requeue, err)
	}
	if diff := cmp.Diff([]action{{"create", "pods", "", "s"}, {"patch", "sandboxes", "status", "s"}}, f.writes()); diff != "" {
		t.Errorf("writes (-want,+got):\n%s", diff)
	}
	ready := meta.FindStatusCondition(f.patchedSandbox("s").Status.Conditions, "Ready")
	if want := "Error seen: creating pod s: " + terminating.Error(); ready == nil || ready.Status != metav1.ConditionFalse || ready.Message != want {
		t.Errorf("Ready = %+v, want False with %q", ready, want)
	}
	if events := f.events(); len(events) != 0 {
		t.Errorf("events %q, want none: the namespace refuses them", events)
	}

	// The same refusal beside an ordinary one (a Service refused by
	// admission) is tried again as that one is.
	f = newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s", func(sb *agentsv1beta1.Sandbox) { sb.Spec.Service = ptr.To(true) })})
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating })
	f.kube.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("services"), "s", errors.New("exceeded quota"))
	})
	if requeue, err := f.syncResult("s"); err != nil || requeue != refusedRequeue {
		t.Fatalf("sync with a quota refusal beside = %s, %v; want %s, nil", requeue, err, refusedRequeue)
	}
	if diff := cmp.Diff([]string{"Warning FailedCreate Failed to create Service s: services \"s\" is forbidden: exceeded quota"}, f.events()); diff != "" {
		t.Errorf("events (-want,+got):\n%s", diff)
	}
}

// Once its status says that the namespace refused its Pod as being
// deleted, the Sandbox is left alone: the namespace controller's deletion
// of its children and its own status write wake it, and every pass would
// only be refused again. A Sandbox of the same name with another UID (in
// a namespace created again later) is synced as any other, and so is one
// with an ordinary refusal beside.
func TestSyncLeavesSandboxWhoseNamespaceIsGoing(t *testing.T) {
	refuse := func(f *fixture) {
		f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminatingRefusal() })
	}
	refusedAndReported := []action{{"create", "pods", "", "s"}, {"patch", "sandboxes", "status", "s"}}
	f := newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s")})
	refuse(f)
	if _, err := f.syncResult("s"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(refusedAndReported, f.writes()); diff != "" {
		t.Fatalf("first pass writes (-want,+got):\n%s", diff)
	}
	f.seed(f.patchedSandbox("s")) // the status write's own event
	for range 2 {
		if requeue, err := f.syncResult("s"); err != nil || requeue != 0 {
			t.Fatalf("later pass = %s, %v; want 0, nil", requeue, err)
		}
		if w := f.writes(); len(w) != 0 {
			t.Errorf("a later pass wrote %v, want nothing: the namespace refuses it again", w)
		}
	}

	f.seed(sandbox("s", func(sb *agentsv1beta1.Sandbox) { sb.UID = "another" }))
	if _, err := f.syncResult("s"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(refusedAndReported, f.writes()); diff != "" {
		t.Errorf("a Sandbox of the same name with another UID: writes (-want,+got):\n%s", diff)
	}

	f = newFixture(t, []*agentsv1beta1.Sandbox{sandbox("s", func(sb *agentsv1beta1.Sandbox) { sb.Spec.Service = ptr.To(true) })})
	refuse(f)
	f.kube.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("services"), "s", errors.New("exceeded quota"))
	})
	for i := range 2 {
		if _, err := f.syncResult("s"); err != nil {
			t.Fatal(err)
		}
		if w := f.writes(); len(w) < 2 || w[0] != (action{"create", "pods", "", "s"}) {
			t.Errorf("pass %d with a quota refusal beside: writes %v, want the Pod tried again", i+1, w)
		}
	}
}
