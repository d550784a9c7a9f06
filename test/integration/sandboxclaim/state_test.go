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
	"strings"
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

// about returns the requests (framework.RequestLog entries, "VERB /path")
// whose path names the object at suffix or one of its subresources.
func about(requests []string, suffix string) []string {
	var out []string
	for _, r := range requests {
		if strings.HasSuffix(r, suffix) || strings.Contains(r, suffix+"/") {
			out = append(out, r)
		}
	}
	return out
}

// TestNameClashDoesNotHotLoop: a claim whose name is held by a Sandbox it
// does not control gets Ready=False with a reason, and then the controller
// leaves it alone: over the following seconds it sends no request about
// the claim and its syncs neither fail nor repeat (a retry with backoff
// would sync it about ten times in five seconds). Deleting the Sandbox
// that holds the name lets the claim bind.
func TestNameClashDoesNotHotLoop(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, timeout)
	// The holder exists before the controllers start, so their first list
	// has it: created just before the claim, it could still be missing
	// from the claim controller's cache when the claim was first synced,
	// and the claim then took the pool's warm member, which needs no name.
	holder := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "clash"}}
	holder.Spec.PodTemplate.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox"}}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, holder, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	requests := &framework.RequestLog{}
	ctrls := framework.StartControllersWithOptions(t, env, framework.ControllerOptions{WrapTransport: requests.Wrap}, append(backend, claims...)...)
	setupPool(t, env, 1)

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
	mark := requests.Mark()
	syncsBefore := ctrls.Syncs(t, sandboxclaim.Name)
	time.Sleep(5 * time.Second)
	sent := about(requests.Since(mark), "/sandboxclaims/clash")
	syncs := ctrls.Syncs(t, sandboxclaim.Name)
	if len(sent) > 0 {
		t.Errorf("the controller sent %d requests about the refused claim while nothing changed: %v", len(sent), sent)
	}
	if syncs.Errors > syncsBefore.Errors {
		t.Errorf("%v failed claim syncs while nothing changed: the queue retries a user error", syncs.Errors-syncsBefore.Errors)
	}
	if d := syncs.Total - syncsBefore.Total; d > 2 {
		t.Errorf("%v claim syncs while nothing changed, want at most 2", d)
	}

	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, "clash", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "clash", "bound once the name is free", func(c *extv1beta1.SandboxClaim) bool {
		return c.Status.SandboxStatus.Name != ""
	})
}
