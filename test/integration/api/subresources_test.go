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

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func readyCondition(status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{
		Type: string(agentsv1beta1.SandboxConditionReady), Status: status, Reason: reason,
		Message: "set by the test", LastTransitionTime: metav1.Now(), ObservedGeneration: 1,
	}
}

// serverTable fetches the server-side Table for one object: exactly what
// kubectl get prints.
func serverTable(ctx context.Context, t *testing.T, cfg *rest.Config, gvr schema.GroupVersionResource, ns, name string) ([]string, []any) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/apis/%s/%s/namespaces/%s/%s/%s", cfg.Host, gvr.Group, gvr.Version, ns, gvr.Resource, name)
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	httpReq.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := client.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as Table: %s", url, resp.Status)
	}
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatalf("decoding Table: %v", err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("Table has %d rows, want 1", len(table.Rows))
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	return cols, table.Rows[0].Cells
}

func TestPrinterColumns(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace
	c := env.Agents

	sb, err := c.AgentsV1beta1().Sandboxes(ns).Create(ctx, newSandbox(ns, "printed"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady)}
	if _, err := c.AgentsV1beta1().Sandboxes(ns).UpdateStatus(ctx, sb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cols, cells := serverTable(ctx, t, env.Config, agentsv1beta1.SandboxesResource, ns, "printed")
	if diff := cmp.Diff([]string{"Name", "Ready", "Reason", "Age"}, cols); diff != "" {
		t.Errorf("Sandbox columns (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"printed", "True", "DependenciesReady"}, cells[:3]); diff != "" {
		t.Errorf("Sandbox cells (-want,+got):\n%s", diff)
	}

	claim, err := c.ExtensionsV1beta1().SandboxClaims(ns).Create(ctx, newClaim(ns, "printed"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionFalse, extv1beta1.ClaimReasonWarmPoolNotFound)}
	claim.Status.SandboxStatus.Name = "pool-x7k2p"
	if _, err := c.ExtensionsV1beta1().SandboxClaims(ns).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cols, cells = serverTable(ctx, t, env.Config, extv1beta1.SandboxClaimsResource, ns, "printed")
	if diff := cmp.Diff([]string{"Name", "Ready", "Sandbox", "Reason", "Age"}, cols); diff != "" {
		t.Errorf("SandboxClaim columns (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"printed", "False", "pool-x7k2p", "WarmPoolNotFound"}, cells[:4]); diff != "" {
		t.Errorf("SandboxClaim cells (-want,+got):\n%s", diff)
	}

	pool, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, newPoolWithReplicas(ns, "printed", "tmpl", 4), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool.Status.Replicas, pool.Status.ReadyReplicas = 3, 2
	if _, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cols, cells = serverTable(ctx, t, env.Config, extv1beta1.SandboxWarmPoolsResource, ns, "printed")
	if diff := cmp.Diff([]string{"Name", "Ready", "Desired", "Age"}, cols); diff != "" {
		t.Errorf("SandboxWarmPool columns (-want,+got):\n%s", diff)
	}
	// Integer columns arrive as JSON numbers.
	if diff := cmp.Diff([]any{"printed", float64(2), float64(4)}, cells[:3]); diff != "" {
		t.Errorf("SandboxWarmPool cells (-want,+got):\n%s", diff)
	}
}

// TestWarmPoolScaleSubresource drives spec.replicas through the scale
// subresource, as kubectl scale and a HorizontalPodAutoscaler do.
func TestWarmPoolScaleSubresource(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace
	pools := env.Agents.ExtensionsV1beta1().SandboxWarmPools(ns)

	pool, err := pools.Create(ctx, newPoolWithReplicas(ns, "scaled", "tmpl", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	selector := agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("scaled")
	pool.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: 2, ReadyReplicas: 1, Selector: selector}
	if _, err := pools.UpdateStatus(ctx, pool, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	scale, err := pools.GetScale(ctx, "scaled", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("GetScale: %v", err)
	}
	want := autoscalingv1.ScaleStatus{Replicas: 2, Selector: selector}
	if scale.Spec.Replicas != 2 || scale.Status != want {
		t.Errorf("scale = spec %d status %+v, want spec 2 status %+v", scale.Spec.Replicas, scale.Status, want)
	}

	scale.Spec.Replicas = 7
	if _, err := pools.UpdateScale(ctx, "scaled", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("UpdateScale: %v", err)
	}
	if got := replicasOf(ctx, t, env, "scaled"); got != 7 {
		t.Errorf("spec.replicas after UpdateScale = %d, want 7", got)
	}

	out, err := exec.CommandContext(ctx, env.Binaries.Kubectl, "--kubeconfig", env.Kubeconfig,
		"-n", ns, "scale", "sandboxwarmpool/scaled", "--replicas=0").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "scaled") {
		t.Errorf("kubectl scale printed %q", out)
	}
	if got := replicasOf(ctx, t, env, "scaled"); got != 0 {
		t.Errorf("spec.replicas after kubectl scale --replicas=0 = %d, want 0", got)
	}
}

func replicasOf(ctx context.Context, t *testing.T, env *framework.Env, name string) int32 {
	t.Helper()
	pool, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(pool.Spec.Replicas, -1)
}

// TestStatusAndSpecAreSeparate checks the status subresource contract: a
// status write never changes spec (or generation), a spec write never
// changes status.
func TestStatusAndSpecAreSeparate(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace
	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(ns)

	created, err := sandboxes.Create(ctx, newSandbox(ns, "split"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A status write that also tries to change the spec.
	statusWrite := created.DeepCopy()
	statusWrite.Status.PodIPs = []string{"127.10.0.5"}
	statusWrite.Status.Conditions = []metav1.Condition{readyCondition(metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady)}
	statusWrite.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	afterStatus, err := sandboxes.UpdateStatus(ctx, statusWrite, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created.Spec, afterStatus.Spec); diff != "" {
		t.Errorf("status write changed spec (-before,+after):\n%s", diff)
	}
	if afterStatus.Generation != created.Generation {
		t.Errorf("status write bumped generation %d -> %d", created.Generation, afterStatus.Generation)
	}
	if diff := cmp.Diff([]string{"127.10.0.5"}, afterStatus.Status.PodIPs); diff != "" {
		t.Errorf("status write lost podIPs (-want,+got):\n%s", diff)
	}

	// A spec write that also tries to change the status.
	specWrite := afterStatus.DeepCopy()
	specWrite.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	specWrite.Status = agentsv1beta1.SandboxStatus{NodeName: "elsewhere"}
	afterSpec, err := sandboxes.Update(ctx, specWrite, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(afterStatus.Status, afterSpec.Status); diff != "" {
		t.Errorf("spec write changed status (-before,+after):\n%s", diff)
	}
	if afterSpec.Spec.OperatingMode != agentsv1beta1.SandboxOperatingModeSuspended {
		t.Errorf("operatingMode = %q, want Suspended", afterSpec.Spec.OperatingMode)
	}
	if afterSpec.Generation != created.Generation+1 {
		t.Errorf("spec write: generation %d, want %d", afterSpec.Generation, created.Generation+1)
	}
}

// TestStatusValidation checks that the status schema is enforced on the
// status subresource too.
func TestStatusValidation(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, time.Minute)
	ns := env.Namespace
	pools := env.Agents.ExtensionsV1beta1().SandboxWarmPools(ns)

	pool, err := pools.Create(ctx, newPool(ns, "status", "tmpl"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool.Status.ObservedGeneration = -1
	_, err = pools.UpdateStatus(ctx, pool, metav1.UpdateOptions{})
	assertInvalid(t, err, "status.observedGeneration", "greater than or equal to 0")

	sandboxes := env.Agents.AgentsV1beta1().Sandboxes(ns)
	sb, err := sandboxes.Create(ctx, newSandbox(ns, "status"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := readyCondition(metav1.ConditionTrue, "not a valid reason!")
	sb.Status.Conditions = []metav1.Condition{bad}
	_, err = sandboxes.UpdateStatus(ctx, sb, metav1.UpdateOptions{})
	assertInvalid(t, err, "status.conditions[0].reason", "should match")
}
