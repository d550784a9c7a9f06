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

// Package sandboxclaim proves the claim controller on a real API server
// with running Pods: warm claims take over pool members exactly once, cold
// claims get their own Sandbox, and bad claims are refused clearly.
package sandboxclaim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(4)) }

const timeout = 3 * time.Minute

var (
	backend = []string{framework.ControllerSandbox, framework.ControllerSandboxWarmPool}
	claims  = []string{framework.ControllerSandboxClaim}
)

func setupPool(t *testing.T, env *framework.Env, replicas int32) {
	t.Helper()
	ctx := context.Background()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "python"},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}},
			},
		}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: "pool"},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(replicas), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPoolReady(t, env, replicas)
}

func waitPoolReady(t *testing.T, env *framework.Env, n int32) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		return err == nil && p.Status.ReadyReplicas == n && p.Status.Replicas == n, nil
	})
	if err != nil {
		t.Fatalf("pool never had %d ready members", n)
	}
}

// waitRefill waits until the pool again controls n Ready members (its
// status may still show the counts from before the burst).
func waitRefill(t *testing.T, env *framework.Env, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool"),
		})
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range list.Items {
			sb := &list.Items[i]
			if ref := metav1.GetControllerOf(sb); ref != nil && ref.Kind == "SandboxWarmPool" &&
				meta.IsStatusConditionTrue(sb.Status.Conditions, "Ready") {
				ready++
			}
		}
		return ready == n, nil
	})
	if err != nil {
		t.Fatalf("the pool never refilled to %d Ready members", n)
	}
}

func newClaim(name string) *extv1beta1.SandboxClaim {
	return &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "pool"}},
	}
}

func readyOf(claim *extv1beta1.SandboxClaim) *metav1.Condition {
	return meta.FindStatusCondition(claim.Status.Conditions, "Ready")
}

func waitClaim(t *testing.T, env *framework.Env, name, what string, cond func(*extv1beta1.SandboxClaim) bool) *extv1beta1.SandboxClaim {
	t.Helper()
	var last *extv1beta1.SandboxClaim
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = c
		return cond(c), nil
	})
	if err != nil {
		t.Fatalf("claim %s never became %s: %+v", name, what, last.Status)
	}
	return last
}

// bindingWatch checks exactly-once at every watch event: a Sandbox, once
// controlled by a claim, is never controlled by a different claim.
type bindingWatch struct {
	mu         sync.Mutex
	controller map[types.UID]types.UID // sandbox -> first claim seen controlling it
	violations []string
}

func watchBindings(t *testing.T, env *framework.Env) *bindingWatch {
	t.Helper()
	w := &bindingWatch{controller: map[types.UID]types.UID{}}
	factory := informers.NewSharedInformerFactoryWithOptions(env.Agents, 0, informers.WithNamespace(env.Namespace))
	inf := factory.Agents().V1beta1().Sandboxes().Informer()
	record := func(obj any) {
		sb, ok := obj.(*agentsv1beta1.Sandbox)
		if !ok {
			return
		}
		ref := metav1.GetControllerOf(sb)
		if ref == nil || ref.Kind != "SandboxClaim" {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if first, seen := w.controller[sb.UID]; seen && first != ref.UID {
			w.violations = append(w.violations, fmt.Sprintf("sandbox %s moved from claim %s to %s", sb.Name, first, ref.UID))
		} else if !seen {
			w.controller[sb.UID] = ref.UID
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
	return w
}

// burst creates n claims at once and waits for all of them to be Ready,
// optionally restarting the claim controller once halfway.
func burst(t *testing.T, env *framework.Env, n int, restart func()) []time.Duration {
	t.Helper()
	ctx := framework.Context(t, timeout)
	created := make([]time.Time, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			created[i] = time.Now()
			_, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim(fmt.Sprintf("claim-%03d", i)), metav1.CreateOptions{})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	readyAt := make([]time.Time, n)
	restarted := restart == nil
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for n := range list.Items {
			c := &list.Items[n]
			var i int
			if _, err := fmt.Sscanf(c.Name, "claim-%03d", &i); err != nil {
				continue
			}
			if r := readyOf(c); r != nil && r.Status == metav1.ConditionTrue {
				ready++
				if readyAt[i].IsZero() {
					readyAt[i] = time.Now()
				}
			}
		}
		if !restarted && ready >= n/4 {
			restart()
			restarted = true
		}
		return ready == n, nil
	})
	if err != nil {
		t.Fatalf("not every claim became Ready: %v", err)
	}
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = readyAt[i].Sub(created[i])
	}
	slices.Sort(lat)
	return lat
}

// checkBindings verifies the end state: every claim controls exactly the
// Sandbox its status names, no Sandbox is controlled by two claims, and
// no claim's Sandbox is left without a claim.
func checkBindings(t *testing.T, env *framework.Env, n, wantWarm int) {
	t.Helper()
	ctx := context.Background()
	claimList, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sbList, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*agentsv1beta1.Sandbox{}
	perClaim := map[types.UID]int{}
	claimUIDs := map[types.UID]bool{}
	for i := range claimList.Items {
		claimUIDs[claimList.Items[i].UID] = true
	}
	for i := range sbList.Items {
		sb := &sbList.Items[i]
		byName[sb.Name] = sb
		if ref := metav1.GetControllerOf(sb); ref != nil && ref.Kind == "SandboxClaim" {
			perClaim[ref.UID]++
			if !claimUIDs[ref.UID] {
				t.Errorf("sandbox %s is controlled by a claim that does not exist", sb.Name)
			}
		}
	}
	warm, cold := 0, 0
	for i := range claimList.Items {
		c := &claimList.Items[i]
		if perClaim[c.UID] != 1 {
			t.Errorf("claim %s controls %d sandboxes, want 1", c.Name, perClaim[c.UID])
		}
		sb, ok := byName[c.Status.SandboxStatus.Name]
		if !ok {
			t.Errorf("claim %s names sandbox %q, which does not exist", c.Name, c.Status.SandboxStatus.Name)
			continue
		}
		if ref := metav1.GetControllerOf(sb); ref == nil || ref.UID != c.UID {
			t.Errorf("claim %s names sandbox %s, which it does not control", c.Name, sb.Name)
		}
		if len(c.Status.SandboxStatus.PodIPs) == 0 {
			t.Errorf("claim %s is Ready without podIPs", c.Name)
		}
		switch sb.Labels[agentsv1beta1.LaunchTypeLabel] {
		case agentsv1beta1.LaunchTypeWarm:
			warm++
			if _, still := sb.Labels[agentsv1beta1.WarmPoolSandboxLabel]; still {
				t.Errorf("adopted sandbox %s still carries the pool label", sb.Name)
			}
		case agentsv1beta1.LaunchTypeCold:
			cold++
		}
	}
	if warm != wantWarm || cold != n-wantWarm {
		t.Errorf("%d warm and %d cold bindings, want %d and %d", warm, cold, wantWarm, n-wantWarm)
	}
}

func TestBurstOfClaimsBindsExactlyOnce(t *testing.T) {
	for name, restartMidway := range map[string]bool{"steady": false, "claim controller restarted midway": true} {
		t.Run(name, func(t *testing.T) {
			env := framework.Setup(t)
			framework.StartControllers(t, env, framework.ControllerSandbox)
			poolCtrl := framework.StartControllers(t, env, framework.ControllerSandboxWarmPool)
			setupPool(t, env, 150)
			// Hold the refill during the burst, so exactly 150 claims can be
			// warm; it resumes afterwards.
			poolCtrl.Stop()
			w := watchBindings(t, env)
			before := env.APIWrites(t)

			claimCtrl := framework.StartControllers(t, env, claims...)
			var restart func()
			if restartMidway {
				restart = func() {
					// A crash loses all memory: a fresh controller must
					// recover every binding from the API alone.
					claimCtrl.Stop()
					framework.StartControllers(t, env, claims...)
				}
			}
			lat := burst(t, env, 200, restart)
			checkBindings(t, env, 200, 150)
			w.mu.Lock()
			for _, v := range w.violations {
				t.Error(v)
			}
			w.mu.Unlock()
			if !restartMidway {
				// Each claim is counted once, by launch type, and its startup
				// latency recorded once.
				warm, cold := counterByLabel(t, claimCtrl, "agent_sandbox_claim_creation_total", "launch_type")
				if warm != 150 || cold != 50 {
					t.Errorf("agent_sandbox_claim_creation_total: %v warm, %v cold; want 150 and 50", warm, cold)
				}
				if n := histogramCount(t, claimCtrl, "agent_sandbox_claim_controller_startup_latency_ms"); n != 200 {
					t.Errorf("startup latency recorded %d times, want once per claim (200)", n)
				}
			}
			framework.StartControllers(t, env, framework.ControllerSandboxWarmPool)
			waitRefill(t, env, 150)
			after := env.APIWrites(t)
			t.Logf("200 claims vs pool of 150: claim -> Ready p50 %s p99 %s max %s; API writes during the burst and refill: %v",
				lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
				framework.WritesSince(before, after))
		})
	}
}

func TestColdWhenPoolIsEmptyAndClearErrors(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	ctx := framework.Context(t, time.Minute)
	claimsClient := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace)

	// No pool yet: WarmPoolNotFound, then resolved by the pool's arrival.
	if _, err := claimsClient.Create(ctx, newClaim("early"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "early", "WarmPoolNotFound", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Reason == extv1beta1.ClaimReasonWarmPoolNotFound
	})
	setupPool(t, env, 0)
	got := waitClaim(t, env, "early", "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionTrue
	})
	if got.Status.SandboxStatus.Name != "early" {
		t.Errorf("cold claim bound to %q, want a Sandbox named after it", got.Status.SandboxStatus.Name)
	}

	// additionalPodMetadata reaches the Pod.
	withMeta := newClaim("labelled")
	withMeta.Spec.AdditionalPodMetadata = agentsv1beta1.PodMetadata{
		Labels:      map[string]string{"sandbox.users.io/team": "blue"},
		Annotations: map[string]string{"note": "hi"},
	}
	if _, err := claimsClient.Create(ctx, withMeta, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, env, "labelled", "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionTrue
	})
	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, "labelled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels["sandbox.users.io/team"] != "blue" || pod.Annotations["note"] != "hi" || pod.Labels["app"] != "agent" {
		t.Errorf("pod metadata %v %v lacks the claim's additions or the template's labels", pod.Labels, pod.Annotations)
	}

	// Reserved prefixes are refused with InvalidMetadata, and nothing is
	// created.
	bad := newClaim("forger")
	bad.Spec.AdditionalPodMetadata.Labels = map[string]string{agentsv1beta1.SandboxNameHashLabel: "deadbeef"}
	if _, err := claimsClient.Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	refused := waitClaim(t, env, "forger", "InvalidMetadata", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Reason == extv1beta1.ClaimReasonInvalidMetadata
	})
	if !strings.Contains(readyOf(refused).Message, agentsv1beta1.SandboxNameHashLabel) {
		t.Errorf("message %q does not name the refused key", readyOf(refused).Message)
	}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "forger", metav1.GetOptions{}); err == nil {
		t.Error("a Sandbox was created for a claim with invalid metadata")
	}
}

// TestPoisonedCandidatesAreNeverTaken: an unowned Sandbox forged with the
// pool's labels, and a member of the same-named pool in another namespace,
// are never adopted.
func TestPoisonedCandidatesAreNeverTaken(t *testing.T) {
	env := framework.Setup(t)
	other := framework.Setup(t)
	framework.StartControllers(t, env, append(backend, claims...)...)
	framework.StartControllers(t, other, backend...)
	ctx := framework.Context(t, time.Minute)
	setupPool(t, env, 0)
	setupPool(t, other, 2)

	forged := &agentsv1beta1.Sandbox{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Labels: map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash("pool"),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
		}},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "evil"}}}},
		}},
	}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Give the forged Sandbox a Pod IP first, so only the ownership rule
	// keeps it out.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "forged", metav1.GetOptions{})
		return err == nil && len(sb.Status.PodIPs) > 0, nil
	})
	if err != nil {
		t.Fatal("the forged sandbox never got a pod IP")
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, newClaim("victim"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitClaim(t, env, "victim", "Ready", func(c *extv1beta1.SandboxClaim) bool {
		r := readyOf(c)
		return r != nil && r.Status == metav1.ConditionTrue
	})
	if got.Status.SandboxStatus.Name != "victim" {
		t.Errorf("claim bound to %q; want a cold Sandbox of its own", got.Status.SandboxStatus.Name)
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, "forged", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(sb); ref != nil {
		t.Errorf("the forged sandbox was taken by %+v", ref)
	}
	members, err := other.Agents.AgentsV1beta1().Sandboxes(other.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.Items {
		if ref := metav1.GetControllerOf(&m); ref == nil || ref.Kind != "SandboxWarmPool" {
			t.Errorf("member %s of another namespace's pool changed hands: %+v", m.Name, ref)
		}
	}
}

func counterByLabel(t *testing.T, ctrl *framework.Controllers, name, label string) (warm, cold float64) {
	t.Helper()
	families, err := ctrl.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != label {
					continue
				}
				switch l.GetValue() {
				case "warm":
					warm += m.GetCounter().GetValue()
				case "cold":
					cold += m.GetCounter().GetValue()
				}
			}
		}
	}
	return warm, cold
}

func histogramCount(t *testing.T, ctrl *framework.Controllers, name string) uint64 {
	t.Helper()
	families, err := ctrl.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
