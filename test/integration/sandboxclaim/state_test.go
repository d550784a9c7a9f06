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
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestClaimStateEmptyAfterChurn creates claims (more than the pool holds,
// so both warm takeovers and cold creates), waits for them to be bound,
// deletes them, and checks that the running claim controller then holds
// no per-claim state at all: nothing grows with the number of claims
// served.
func TestClaimStateEmptyAfterChurn(t *testing.T) {
	env := framework.Setup(t)
	ctrls := framework.StartControllers(t, env, append(backend, claims...)...)
	setupPool(t, env, 3)
	ctx := framework.Context(t, timeout)
	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)

	const n = 12
	for round := range 2 {
		for i := range n {
			if _, err := claimsClient.Create(ctx, newClaim(fmt.Sprintf("churn-%d-%02d", round, i)), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			waitClaim(t, env, fmt.Sprintf("churn-%d-%02d", round, i), "bound", func(c *extv1beta1.SandboxClaim) bool {
				return c.Status.SandboxStatus.Name != ""
			})
		}
		if got := ctrls.Claim.StateSize().Claims; got < n {
			t.Errorf("round %d: %d claims in the controller's state while %d are bound; is StateSize reading the right controller?", round, got, n)
		}
		for i := range n {
			if err := claimsClient.Delete(ctx, fmt.Sprintf("churn-%d-%02d", round, i), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Template verdicts are per Sandbox, kept while the Sandbox exists
	// (the deleted claims' Sandboxes go by garbage collection, and their
	// verdicts with their delete events).
	var last sandboxclaim.StateSize
	sandboxes := 0
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		last, sandboxes = ctrls.Claim.StateSize(), len(list.Items)
		return last.Claims == 0 && last.Reservations == 0 && last.Untrusted == 0 && last.WrittenStatus == 0 &&
			last.TemplateVerdicts <= sandboxes, nil
	})
	if err != nil {
		t.Fatalf("after %d claims were created and deleted the controller still holds %+v (%d Sandboxes left)", 2*n, last, sandboxes)
	}
}

// requestCounter counts the requests whose path names one object.
type requestCounter struct {
	mu     sync.Mutex
	suffix string
	n      int
	seen   []string
}

func (c *requestCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, c.suffix) || strings.Contains(req.URL.Path, c.suffix+"/") {
			c.mu.Lock()
			c.n++
			c.seen = append(c.seen, req.Method+" "+req.URL.Path)
			c.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

func (c *requestCounter) count() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, append([]string(nil), c.seen...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestNameClashDoesNotHotLoop: a claim whose name is held by a Sandbox it
// does not control gets Ready=False with a reason, and then the controller
// leaves it alone: over the following seconds it sends no request about
// the claim and its syncs neither fail nor repeat (a retry with backoff
// would sync it about ten times in five seconds). Deleting the Sandbox
// that holds the name lets the claim bind.
func TestNameClashDoesNotHotLoop(t *testing.T) {
	env := framework.Setup(t)
	counter := &requestCounter{suffix: "/sandboxclaims/clash"}
	ctrls := framework.StartControllersWithOptions(t, env, framework.ControllerOptions{WrapTransport: counter.wrap}, append(backend, claims...)...)
	setupPool(t, env, 1)
	ctx := framework.Context(t, timeout)

	holder := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "clash"}}
	holder.Spec.PodTemplate.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox"}}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, holder, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim("clash"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	refused := waitClaim(t, env, "clash", "refused for its name", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == extv1beta1.ClaimReasonReconcilerError
	})
	if msg := readyOf(refused).Message; !strings.Contains(msg, "use a different claim name") {
		t.Errorf("Ready message %q does not say what to do", msg)
	}

	// Let the sync that the status write itself wakes run, then watch.
	time.Sleep(time.Second)
	requestsBefore, _ := counter.count()
	syncsBefore := reconciles(t, ctrls)
	time.Sleep(5 * time.Second)
	requests, seen := counter.count()
	syncs := reconciles(t, ctrls)
	if d := requests - requestsBefore; d > 0 {
		t.Errorf("the controller sent %d requests about the refused claim while nothing changed: %v", d, seen[requestsBefore:])
	}
	if syncs.errors > syncsBefore.errors {
		t.Errorf("%v failed claim syncs while nothing changed: the queue retries a user error", syncs.errors-syncsBefore.errors)
	}
	if d := syncs.total - syncsBefore.total; d > 2 {
		t.Errorf("%v claim syncs while nothing changed, want at most 2", d)
	}

	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "clash", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "clash", "bound once the name is free", func(c *extv1beta1.SandboxClaim) bool {
		return c.Status.SandboxStatus.Name != ""
	})
}

type syncCounts struct{ total, errors float64 }

// reconciles reads the claim controller's sync counters.
func reconciles(t *testing.T, ctrls *framework.Controllers) syncCounts {
	t.Helper()
	families, err := ctrls.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out syncCounts
	for _, f := range families {
		for _, m := range f.GetMetric() {
			isClaim := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == sandboxclaim.Name {
					isClaim = true
				}
			}
			if !isClaim {
				continue
			}
			switch f.GetName() {
			case "controller_runtime_reconcile_total":
				out.total += m.GetCounter().GetValue()
			case "controller_runtime_reconcile_errors_total":
				out.errors += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
