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

// Package badinput proves that objects the API server accepts but the
// controllers cannot act on (a missing pool or template, an unknown
// RuntimeClass, an environment too large to fit, a Pod in a namespace
// being deleted) end as a condition with a reason, and that the
// controllers then leave them alone: their requests about such an object
// stay under a small count for 30 s, where retrying with the workqueue's
// exponential backoff would send one or more requests per retry, 5 ms
// doubling.
package badinput

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// window is how long the controllers are watched after the object is
// created; maxRequests is what they may send about it in that time. A
// controller that gives up sends a status write, an Event and perhaps
// the one request the API server refused (2 to 3 measured). The
// workqueue's backoff (5 ms doubling) retries 12 times in the first 20 s,
// so a retry loop makes 13 attempts in the window, each at least one
// request, whatever the machine's speed.
const (
	window      = 30 * time.Second
	maxRequests = 8
)

// counter counts the requests the controllers send, by verb and
// resource; lists and watches are the informers' and not counted.
type counter struct {
	mu    sync.Mutex
	on    bool
	byKey map[string]int
}

func (c *counter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		c.count(req, code)
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// count records req under its verb, resource and answer, e.g.
// "POST sandboxes 500".
func (c *counter) count(req *http.Request, code int) {
	// /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]], or
	// /apis/<group>/<version>/namespaces/...
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	i := slices.Index(parts, "namespaces")
	if i < 0 || len(parts) < i+3 {
		return // cluster-scoped, or the namespace itself
	}
	rest := parts[i+2:]
	if req.Method == http.MethodGet && len(rest) == 1 {
		return // a list or a watch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		c.byKey[fmt.Sprintf("%s %s%s %d", req.Method, rest[0], subresource(rest), code)]++
	}
}

func subresource(rest []string) string {
	if len(rest) > 2 {
		return "/" + rest[2]
	}
	return ""
}

func (c *counter) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.byKey = true, map[string]int{}
}

func (c *counter) total() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.byKey {
		n += v
	}
	return n, maps.Clone(c.byKey)
}

func container() corev1.Container {
	return corev1.Container{Name: "agent", Image: "python:3.13"}
}

func template(ns, name string) *extv1beta1.SandboxTemplate {
	return &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{container()}}},
		}},
	}
}

func pool(ns, name, template string) *extv1beta1.SandboxWarmPool {
	return &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To[int32](0), TemplateRef: extv1beta1.SandboxTemplateRef{Name: template}},
	}
}

func claim(ns, name, pool string) *extv1beta1.SandboxClaim {
	return &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: pool}},
	}
}

// conditions reads the Ready condition of the object a case is about.
type conditions func(ctx context.Context) ([]metav1.Condition, error)

func claimConditions(env *framework.Env, name string) conditions {
	return func(ctx context.Context) ([]metav1.Condition, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return c.Status.Conditions, nil
	}
}

func sandboxConditions(env *framework.Env, name string) conditions {
	return func(ctx context.Context) ([]metav1.Condition, error) {
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return sb.Status.Conditions, nil
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// hugeValue is large enough that one copy fits in an object and two
// copies, the template's and the claim's, do not fit in the Sandbox made
// of both (etcd refuses requests over 1.5 MiB).
var hugeValue = strings.Repeat("x", 900<<10)

// TestUnactionableObjectsEndAsAConditionWithoutRetries: each object is
// valid to the schema, but what it asks for cannot be done until a user
// changes something. The controller must say so in Ready (False, with
// the reason the spec gives) and then not retry on its own.
func TestUnactionableObjectsEndAsAConditionWithoutRetries(t *testing.T) {
	tests := map[string]struct {
		controllers []string
		// create makes the objects and returns how to read the Ready
		// condition of the one that cannot be acted on.
		create     func(t *testing.T, ctx context.Context, env *framework.Env) conditions
		wantReason string
		// absent are requests (as counter names them) that must not be
		// sent at all; present, requests the case must have caused; once,
		// requests it must have caused exactly once.
		absent, present, once []string
	}{
		"claim of a missing pool": {
			controllers: []string{framework.ControllerSandboxClaim},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				must[*extv1beta1.SandboxClaim](t)(env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, claim(env.Namespace, "c", "nowhere"), metav1.CreateOptions{}))
				return claimConditions(env, "c")
			},
			wantReason: extv1beta1.ClaimReasonWarmPoolNotFound,
		},
		"claim of a pool whose template is missing": {
			controllers: []string{framework.ControllerSandboxClaim, framework.ControllerSandboxWarmPool},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				ext := env.Agents.ExtensionsV1beta1()
				must[*extv1beta1.SandboxWarmPool](t)(ext.SandboxWarmPools(env.Namespace).Create(ctx, pool(env.Namespace, "p", "gone"), metav1.CreateOptions{}))
				must[*extv1beta1.SandboxClaim](t)(ext.SandboxClaims(env.Namespace).Create(ctx, claim(env.Namespace, "c", "p"), metav1.CreateOptions{}))
				return claimConditions(env, "c")
			},
			wantReason: extv1beta1.ClaimReasonTemplateNotFound,
		},
		"claim whose env makes a Sandbox too large to store": {
			controllers: []string{framework.ControllerSandboxClaim},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				ext := env.Agents.ExtensionsV1beta1()
				tmpl := template(env.Namespace, "t")
				tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyAllowed
				tmpl.Spec.PodTemplate.ObjectMeta.Annotations = map[string]string{"example.com/notes": hugeValue}
				must[*extv1beta1.SandboxTemplate](t)(ext.SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}))
				must[*extv1beta1.SandboxWarmPool](t)(ext.SandboxWarmPools(env.Namespace).Create(ctx, pool(env.Namespace, "p", "t"), metav1.CreateOptions{}))
				c := claim(env.Namespace, "c", "p")
				c.Spec.Env = []extv1beta1.EnvVar{{Name: "HUGE", Value: hugeValue}}
				must[*extv1beta1.SandboxClaim](t)(ext.SandboxClaims(env.Namespace).Create(ctx, c, metav1.CreateOptions{}))
				return claimConditions(env, "c")
			},
			wantReason: extv1beta1.ClaimReasonReconcilerError,
		},
		"sandbox of an unknown RuntimeClass": {
			controllers: []string{framework.ControllerSandbox},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				sb := &agentsv1beta1.Sandbox{
					ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: "s"},
					Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
						PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{
							RuntimeClassName: ptr.To("no-such-runtime-class"), Containers: []corev1.Container{container()},
						}},
					}},
				}
				must[*agentsv1beta1.Sandbox](t)(env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}))
				return sandboxConditions(env, "s")
			},
			wantReason: agentsv1beta1.SandboxReasonReconcilerError,
		},
		// The namespace is being deleted and its Pods went first, as the
		// namespace controller may delete them: the Pod's re-create is
		// refused for good and the Sandbox goes next. Ready says why; no
		// Warning Event is attempted (the namespace refuses it too: one
		// refused write per Sandbox of a deleted namespace) and nothing is
		// retried. This package runs no kube-controller-manager, so the
		// namespace stays Terminating until the case finalizes it.
		"sandbox whose pod is refused in a namespace being deleted": {
			controllers: []string{framework.ControllerSandbox},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				sb := &agentsv1beta1.Sandbox{
					ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: "s"},
					Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
						PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{container()}}},
					}},
				}
				must[*agentsv1beta1.Sandbox](t)(env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, sb, metav1.CreateOptions{}))
				pods := env.Kube.CoreV1().Pods(env.Namespace)
				if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, window, true, func(ctx context.Context) (bool, error) {
					_, err := pods.Get(ctx, "s", metav1.GetOptions{})
					return err == nil, nil
				}); err != nil {
					t.Fatalf("the Sandbox's Pod was not created: %v", err)
				}
				waitEventWritten(t, ctx, env, "SuccessfulCreate")
				t.Cleanup(func() { finalizeNamespace(t, env) })
				if err := env.Kube.CoreV1().Namespaces().Delete(ctx, env.Namespace, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				// Unscheduled, so deleted at once.
				if err := pods.Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				return sandboxConditions(env, "s")
			},
			wantReason: agentsv1beta1.SandboxReasonReconcilerError,
			absent:     []string{"POST events 403"},
			// Its own status write wakes the Sandbox again; the
			// refusal it reported is not tried again.
			once: []string{"POST pods 403"},
		},
		// The same for a claim whose cold Sandbox is refused in a
		// namespace being deleted: the claim waits on a missing template,
		// the namespace starts going, then its pool points at a template
		// that exists (updates are still allowed) and the claim tries its
		// cold create. Nothing is written or retried after the refusal.
		"claim whose cold sandbox is refused in a namespace being deleted": {
			controllers: []string{framework.ControllerSandboxClaim},
			create: func(t *testing.T, ctx context.Context, env *framework.Env) conditions {
				ext := env.Agents.ExtensionsV1beta1()
				must[*extv1beta1.SandboxTemplate](t)(ext.SandboxTemplates(env.Namespace).Create(ctx, template(env.Namespace, "t"), metav1.CreateOptions{}))
				must[*extv1beta1.SandboxWarmPool](t)(ext.SandboxWarmPools(env.Namespace).Create(ctx, pool(env.Namespace, "p", "gone"), metav1.CreateOptions{}))
				must[*extv1beta1.SandboxClaim](t)(ext.SandboxClaims(env.Namespace).Create(ctx, claim(env.Namespace, "cold", "p"), metav1.CreateOptions{}))
				get := claimConditions(env, "cold")
				if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, window, true, func(ctx context.Context) (bool, error) {
					conds, err := get(ctx)
					c := meta.FindStatusCondition(conds, "Ready")
					return err == nil && c != nil && c.Reason == extv1beta1.ClaimReasonTemplateNotFound, nil
				}); err != nil {
					t.Fatalf("the claim did not report its missing template: %v", err)
				}
				waitEventWritten(t, ctx, env, extv1beta1.ClaimReasonTemplateNotFound)
				t.Cleanup(func() { finalizeNamespace(t, env) })
				if err := env.Kube.CoreV1().Namespaces().Delete(ctx, env.Namespace, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := ext.SandboxWarmPools(env.Namespace).Patch(ctx, "p", types.MergePatchType,
					[]byte(`{"spec":{"sandboxTemplateRef":{"name":"t"}}}`), metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
				return get
			},
			wantReason: extv1beta1.ClaimReasonTemplateNotFound,
			absent:     []string{"POST events 403"},
			present:    []string{"POST sandboxes 403"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := framework.Setup(t)
			ctx := framework.Context(t, 2*window)
			requests := &counter{}
			framework.StartControllersWithOptions(t, env, framework.ControllerOptions{WrapTransport: requests.wrap}, tc.controllers...)

			requests.start()
			created := time.Now()
			get := tc.create(t, ctx, env)
			var ready *metav1.Condition
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, window, true, func(ctx context.Context) (bool, error) {
				conds, err := get(ctx)
				if err != nil {
					return false, err
				}
				ready = meta.FindStatusCondition(conds, "Ready")
				return ready != nil && ready.Reason == tc.wantReason, nil
			})
			if err != nil {
				t.Fatalf("Ready is %+v after %v; want False with reason %s", ready, window, tc.wantReason)
			}
			if ready.Status != metav1.ConditionFalse {
				t.Errorf("Ready %s, want False (reason %s: %s)", ready.Status, ready.Reason, ready.Message)
			}
			t.Logf("Ready=%s %s: %s", ready.Status, ready.Reason, truncate(ready.Message))

			// The rest of the window, then the count; the condition
			// must still be there (no pass undid it).
			<-time.After(time.Until(created.Add(window)))
			n, byKey := requests.total()
			t.Logf("requests in %v: %d %v", window, n, byKey)
			if n > maxRequests {
				t.Errorf("controllers sent %d requests in %v about an object they cannot act on, want at most %d: %v", n, window, maxRequests, byKey)
			}
			for _, key := range tc.absent {
				if byKey[key] != 0 {
					t.Errorf("%d requests %q, want none", byKey[key], key)
				}
			}
			for _, key := range tc.present {
				if byKey[key] == 0 {
					t.Errorf("no request %q: the case did not happen", key)
				}
			}
			for _, key := range tc.once {
				if byKey[key] != 1 {
					t.Errorf("%d requests %q, want exactly one", byKey[key], key)
				}
			}
			conds, err := get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c := meta.FindStatusCondition(conds, "Ready"); c == nil || c.Reason != tc.wantReason {
				t.Errorf("Ready after %v: %+v, want reason %s", window, c, tc.wantReason)
			}
		})
	}
}

// waitEventWritten waits until the Event of reason is stored: Events are
// written after the status that goes with them, and one written once the
// namespace is being deleted would be refused, which the cases about
// such a namespace count as a failure.
func waitEventWritten(t *testing.T, ctx context.Context, env *framework.Env, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, window, true, func(ctx context.Context) (bool, error) {
		events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		return slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool { return e.Reason == reason }), nil
	})
	if err != nil {
		t.Fatalf("no %s Event was written: %v", reason, err)
	}
}

// finalizeNamespace ends the deletion of the test's namespace as the
// namespace controller would, which this package does not run: its
// content is deleted, then its finalizer removed.
func finalizeNamespace(t *testing.T, env *framework.Env) {
	ctx := context.Background()
	sbs := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace)
	if err := sbs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the Sandboxes: %v", err)
	}
	ext := env.Agents.ExtensionsV1beta1()
	if err := ext.SandboxClaims(env.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the claims: %v", err)
	}
	if err := ext.SandboxWarmPools(env.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the pools: %v", err)
	}
	if err := ext.SandboxTemplates(env.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the templates: %v", err)
	}
	sas := env.Kube.CoreV1().ServiceAccounts(env.Namespace)
	if err := sas.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the ServiceAccounts: %v", err)
	}
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, env.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Errorf("reading the namespace: %v", err)
		return
	}
	ns.Spec.Finalizers = nil
	if _, err := env.Kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Errorf("finalizing the namespace: %v", err)
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", s[:300], len(s))
	}
	return s
}
