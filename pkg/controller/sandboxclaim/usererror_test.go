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

package sandboxclaim

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// problemStatus is the status patch of an unbound claim with a problem.
func problemStatus(t *testing.T, claim, reason, message string) action {
	return patchClaimStatus(t, claim, `{"status":{
		"conditions":[{"type":"Ready","status":"False","reason":"`+reason+`","message":`+quote(t, message)+`,"observedGeneration":1,"lastTransitionTime":"`+now.Format(time.RFC3339)+`"}]}}`)
}

func quote(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withStatus is claim as the informer shows it after the status patch
// of problemStatus.
func withStatus(claim *extv1beta1.SandboxClaim, reason, message string) *extv1beta1.SandboxClaim {
	claim = claim.DeepCopy()
	claim.ResourceVersion = "11"
	claim.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: message,
		ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(now)}}
	return claim
}

// A problem only a user can fix becomes Ready=False with a reason and one
// Warning Event, and the sync returns no error: the queue must not retry
// it with exponential backoff against the API server. A second pass (the
// informer showing the condition) writes nothing and says nothing; only
// the long backstop requeue is asked for.
func TestSyncPermanentUserErrors(t *testing.T) {
	envTemplate := func(policy extv1beta1.EnvVarsInjectionPolicy) *extv1beta1.SandboxTemplate {
		tmpl := newTemplate()
		tmpl.Spec.EnvVarsInjectionPolicy = policy
		tmpl.Spec.PodTemplate.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "HOME", Value: "/root"}}
		return tmpl
	}
	withEnv := func(env ...extv1beta1.EnvVar) func(*extv1beta1.SandboxClaim) {
		return func(c *extv1beta1.SandboxClaim) { c.Spec.Env = env }
	}
	foreign := func(owner func(*agentsv1beta1.Sandbox)) *agentsv1beta1.Sandbox {
		sb := newMember("c1", memberReady, time.Hour)
		sb.OwnerReferences = nil
		sb.Labels = nil
		if owner != nil {
			owner(sb)
		}
		return sb
	}
	otherClaim := newClaim("other")
	for name, tc := range map[string]struct {
		tmpl            *extv1beta1.SandboxTemplate
		claim           func(*extv1beta1.SandboxClaim)
		sandbox         *agentsv1beta1.Sandbox // besides a Ready member
		reason, message string
	}{
		"name clash with an unowned Sandbox": {
			sandbox: foreign(nil),
			reason:  extv1beta1.ClaimReasonReconcilerError, message: "sandbox c1 exists and is not controlled by this claim; use a different claim name",
		},
		"name clash with another claim's Sandbox": {
			sandbox: foreign(func(sb *agentsv1beta1.Sandbox) {
				sb.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(otherClaim, extv1beta1.SandboxClaimGroupVersionKind)}
			}),
			reason: extv1beta1.ClaimReasonReconcilerError, message: "sandbox c1 exists and is not controlled by this claim; use a different claim name",
		},
		"env under the default policy": {
			claim:  withEnv(extv1beta1.EnvVar{Name: "A", Value: "1"}),
			reason: extv1beta1.ClaimReasonEnvVarsRejected, message: "environment variable injection is not allowed by the template policy",
		},
		"env overriding the template under Allowed": {
			tmpl: envTemplate(extv1beta1.EnvVarsInjectionPolicyAllowed), claim: withEnv(extv1beta1.EnvVar{Name: "HOME", Value: "/tmp"}),
			reason: extv1beta1.ClaimReasonEnvVarsRejected, message: `environment variable override is not allowed by the template policy for variable "HOME"`,
		},
		"env for a container the template lacks": {
			tmpl: envTemplate(extv1beta1.EnvVarsInjectionPolicyOverrides), claim: withEnv(extv1beta1.EnvVar{Name: "A", Value: "1", ContainerName: "nope"}),
			reason: extv1beta1.ClaimReasonEnvVarsRejected, message: `target container "nope" not found in template for environment variable "A"`,
		},
		"volume claim templates the template forbids": {
			claim: func(c *extv1beta1.SandboxClaim) {
				c.Spec.VolumeClaimTemplates = []agentsv1beta1.PersistentVolumeClaimTemplate{{EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "data"}}}
			},
			reason: extv1beta1.ClaimReasonVolumeClaimTemplates, message: "the template's volumeClaimTemplatesPolicy does not allow claims to set volumeClaimTemplates",
		},
		"pod metadata contradicting the template": {
			tmpl: func() *extv1beta1.SandboxTemplate {
				tmpl := newTemplate()
				tmpl.Spec.PodTemplate.ObjectMeta.Labels = map[string]string{"sandbox.users.io/team": "red"}
				return tmpl
			}(),
			claim: func(c *extv1beta1.SandboxClaim) {
				c.Spec.AdditionalPodMetadata.Labels = map[string]string{"sandbox.users.io/team": "blue"}
			},
			reason: extv1beta1.ClaimReasonReconcilerError, message: `metadata override conflict: label sandbox.users.io/team="blue" (template has "red")`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := tc.tmpl
			if tmpl == nil {
				tmpl = newTemplate()
			}
			var mutate []func(*extv1beta1.SandboxClaim)
			if tc.claim != nil {
				mutate = append(mutate, tc.claim)
			}
			claim := newClaim("c1", mutate...)
			objs := []runtime.Object{tmpl, newPool(), claim, newMember("pool-a", memberReady, time.Minute)}
			if tc.sandbox != nil {
				objs = append(objs, tc.sandbox)
			}
			f := newFixture(t, objs...)

			requeue, err := f.run("c1")
			if err != nil {
				t.Fatalf("sync returned %v: the queue would retry it with backoff", err)
			}
			if requeue != userErrorRequeue {
				t.Errorf("requeue %s, want the backstop %s", requeue, userErrorRequeue)
			}
			f.expectActions(problemStatus(t, "c1", tc.reason, tc.message))
			f.expectEvents("Warning " + tc.reason + " " + tc.message)

			f.cache(withStatus(claim, tc.reason, tc.message))
			if _, err := f.run("c1"); err != nil {
				t.Fatalf("second pass: %v", err)
			}
			f.expectActions()
			f.expectEvents()
		})
	}
}

// A cold create the API server refuses as invalid or too large cannot
// succeed until the claim or the template changes: a condition, not a
// retry loop. etcd's own size refusal reaches us as a bare 500 with
// etcd's message (kube-apiserver v1.36), not as a 413.
func TestSyncRefusedColdSandboxIsAUserError(t *testing.T) {
	tooLarge := func(message string) error {
		return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: message}}
	}
	tests := map[string]error{
		"invalid": apierrors.NewInvalid(schema.GroupKind{Group: agentsv1beta1.GroupName, Kind: "Sandbox"}, "c1",
			field.ErrorList{field.TooLong(field.NewPath("spec"), "", 1)}),
		"over the API server's body limit": apierrors.NewRequestEntityTooLargeError("limit is 3145728"),
		"over etcd's request limit":        tooLarge("etcdserver: request is too large"),
		"over the etcd client's send limit": tooLarge("rpc error: code = ResourceExhausted desc = " +
			"trying to send message larger than max (2097253 vs. 2097152)"),
	}
	for name, refusal := range tests {
		t.Run(name, func(t *testing.T) {
			claim := newClaim("c1", func(c *extv1beta1.SandboxClaim) { c.Spec.Env = []extv1beta1.EnvVar{{Name: "A", Value: "1"}} })
			tmpl := newTemplate()
			tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
			f := newFixture(t, tmpl, newPool(), claim)
			f.agents.PrependReactor("create", "sandboxes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, refusal })

			if _, err := f.run("c1"); err != nil {
				t.Fatalf("sync returned %v: the queue would retry it with backoff", err)
			}
			message := "creating sandbox: " + refusal.Error()
			f.expectActions(createSandbox(coldSandbox(claim, corev1.EnvVar{Name: "A", Value: "1"})), problemStatus(t, "c1", extv1beta1.ClaimReasonReconcilerError, message))
			f.expectEvents("Warning ReconcilerError " + message)
			if pending, _ := f.c.state.pending(claim.UID); pending {
				t.Error("the claim still waits for a Sandbox that was never created")
			}
		})
	}
}

// A cold create that finds its name taken waits for the cache: no Event
// (nothing for the user to fix yet), and a look again once the binding
// marker lapses, since a Sandbox that is not the claim's would never wake
// it.
func TestSyncCreatePendingLooksAgain(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim)
	f.agents.PrependReactor("create", "sandboxes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewAlreadyExists(agentsv1beta1.SandboxesResource.GroupResource(), "c1")
	})
	requeue, err := f.run("c1")
	if err != nil {
		t.Fatal(err)
	}
	if requeue != bindingLag {
		t.Errorf("requeue %s, want %s", requeue, bindingLag)
	}
	f.expectActions(createSandbox(coldSandbox(claim)),
		problemStatus(t, "c1", extv1beta1.ClaimReasonSandboxCreatePending, "sandbox c1 already exists; waiting for the cache"))
	f.expectEvents()
}

// A transient failure is still an error for the queue to retry, a 500
// that is not etcd's size refusal included.
func TestSyncTransientErrorIsRetried(t *testing.T) {
	for name, transient := range map[string]error{
		"unavailable": apierrors.NewServiceUnavailable("try later"),
		"internal":    apierrors.NewInternalError(errors.New("etcdserver: leader changed")),
	} {
		t.Run(name, func(t *testing.T) {
			claim := newClaim("c1")
			f := newFixture(t, newTemplate(), newPool(), claim)
			f.agents.PrependReactor("create", "sandboxes", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, transient
			})
			if _, err := f.run("c1"); !errors.Is(err, transient) {
				t.Fatalf("sync returned %v, want the wrapped %v", err, transient)
			}
			f.expectEvents()
		})
	}
}

// What the user fixes elsewhere wakes the claim: the Sandbox that held
// its name goes, the template (its policies) or the pool changes.
func TestUserErrorsWokenByWhatTheyDependOn(t *testing.T) {
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim)
	woken := func(what string, deliver func()) {
		t.Helper()
		for f.c.queue.Len() > 0 {
			key, _ := f.c.queue.Get()
			f.c.queue.Done(key)
		}
		deliver()
		if n := f.c.queue.Len(); n != 1 {
			t.Errorf("%s: %d keys queued, want the claim's", what, n)
		}
	}
	holder := newMember("c1", memberReady, time.Hour)
	woken("the Sandbox holding the claim's name is deleted", func() { f.c.sandboxDeleted(holder) })
	woken("the template changes", func() { f.c.templateChanged(newTemplate()) })
	woken("the pool changes", func() { f.c.wakeWaitingClaims(newPool()) })
}

// A cold create refused because the namespace is being deleted (its
// Sandboxes went before its claims) is the end: no status write, no Event
// (the namespace refuses it too), no retry with backoff; the claim's
// deletion follows.
func TestSyncColdCreateInTerminatingNamespaceIsFinal(t *testing.T) {
	terminating := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: `sandboxes.agents.x-k8s.io "c1" is forbidden: unable to create new content in namespace ns because it is being terminated`,
		Details: &metav1.StatusDetails{Name: "c1", Kind: "sandboxes", Causes: []metav1.StatusCause{{
			Type: corev1.NamespaceTerminatingCause, Message: "namespace ns is being terminated", Field: "metadata.namespace"}}},
	}}
	claim := newClaim("c1")
	f := newFixture(t, newTemplate(), newPool(), claim)
	f.agents.PrependReactor("create", "sandboxes", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating })
	requeue, err := f.run("c1")
	if err != nil || requeue != 0 {
		t.Fatalf("sync = %s, %v; want 0, nil: neither a retry nor a requeue", requeue, err)
	}
	f.expectActions(createSandbox(coldSandbox(claim)))
	f.expectEvents()
	if pending, _ := f.c.state.pending(claim.UID); pending {
		t.Error("the claim still waits for a Sandbox that was never created")
	}
}
