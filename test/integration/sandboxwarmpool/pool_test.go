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

// Package sandboxwarmpool proves the warm pool controller on a real API
// server with running Pods: pools fill to Ready and never own more than
// spec.replicas members, even when the API is slow and the informers lag.
package sandboxwarmpool

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

const timeout = 2 * time.Minute

var allControllers = []string{framework.ControllerSandbox, framework.ControllerSandboxWarmPool}

func newTemplate(ns, name, image string) *extv1beta1.SandboxTemplate {
	return &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		}},
	}
}

func setup(t *testing.T, env *framework.Env, replicas int32, strategy extv1beta1.SandboxWarmPoolUpdateStrategyType) *extv1beta1.SandboxWarmPool {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, newTemplate(env.Namespace, "python", "python:3.13"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace, Name: "pool"},
		Spec: extv1beta1.SandboxWarmPoolSpec{
			Replicas:    ptr.To(replicas),
			TemplateRef: extv1beta1.SandboxTemplateRef{Name: "python"},
		},
	}
	if strategy != "" {
		pool.Spec.UpdateStrategy = &extv1beta1.SandboxWarmPoolUpdateStrategy{Type: strategy}
	}
	created, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// ownershipWatch records, at every watch event, how many Sandboxes the
// pool controls, and the largest count ever seen.
type ownershipWatch struct {
	pool  types.UID
	store cache.Store
	mu    sync.Mutex
	max   int
}

func watchOwnership(t *testing.T, env *framework.Env, pool types.UID) *ownershipWatch {
	t.Helper()
	w := &ownershipWatch{pool: pool}
	watchSandboxes(t, env, func(store cache.Store) cache.ResourceEventHandler {
		w.store = store
		record := func(any) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.max = max(w.max, w.ownedLocked())
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }, DeleteFunc: record}
	})
	return w
}

// watchSandboxes runs an informer on the Sandboxes of env's namespace
// until the test ends, and returns once it has synced. handler is given
// the informer's store before it starts and returns the event handler.
func watchSandboxes(t *testing.T, env *framework.Env, handler func(cache.Store) cache.ResourceEventHandler) {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(env.Agents, 0, informers.WithNamespace(env.Namespace))
	inf := factory.Agents().V1beta1().Sandboxes().Informer()
	if _, err := inf.AddEventHandler(handler(inf.GetStore())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
}

func (w *ownershipWatch) ownedLocked() int {
	n := 0
	for _, o := range w.store.List() {
		if ref := metav1.GetControllerOf(o.(*agentsv1beta1.Sandbox)); ref != nil && ref.UID == w.pool {
			n++
		}
	}
	return n
}

func (w *ownershipWatch) maxOwned() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

func (w *ownershipWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.max = w.ownedLocked()
}

// waitPool waits until the pool reports want ready members out of want,
// with status reflecting the latest generation.
func waitPool(t *testing.T, env *framework.Env, want int32) *extv1beta1.SandboxWarmPool {
	t.Helper()
	var last *extv1beta1.SandboxWarmPool
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, "pool", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return p.Status.ObservedGeneration == p.Generation && p.Status.Replicas == want && p.Status.ReadyReplicas == want, nil
	})
	if err != nil {
		t.Fatalf("pool never reached %d ready members: status %+v", want, last.Status)
	}
	return last
}

func members(t *testing.T, env *framework.Env) []agentsv1beta1.Sandbox {
	t.Helper()
	list, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func scale(t *testing.T, env *framework.Env, replicas int32) {
	t.Helper()
	pools := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace)
	s, err := pools.GetScale(context.Background(), "pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := pools.UpdateScale(context.Background(), "pool", s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPoolFillsAndScalesWithoutOvershoot(t *testing.T) {
	for name, opts := range map[string]framework.ControllerOptions{
		"fast":                       {},
		"slow API and lagging watch": {APIDelay: 10 * time.Millisecond, WatchDelay: 50 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			env := framework.Setup(t)
			framework.StartControllersWithOptions(t, env, opts, allControllers...)
			pool := setup(t, env, 50, "")
			w := watchOwnership(t, env, pool.UID)

			start := time.Now()
			got := waitPool(t, env, 50)
			t.Logf("50 members Ready in %s", time.Since(start).Round(time.Millisecond))
			if m := w.maxOwned(); m > 50 {
				t.Errorf("the pool owned %d members at some point; replicas is 50", m)
			}
			if got.Status.Selector != agentsv1beta1.WarmPoolSandboxLabel+"="+agentsv1beta1.NameHash("pool") {
				t.Errorf("status.selector = %q", got.Status.Selector)
			}
			assertMembersWellFormed(t, env, pool)

			for _, n := range []int32{5, 30} {
				w.reset()
				scale(t, env, n)
				waitPool(t, env, n)
				// Scaling down starts above the target; scaling up must
				// never pass it.
				if m := w.maxOwned(); n == 30 && m > int(n) {
					t.Errorf("scaling to %d: the pool owned %d members at some point", n, m)
				}
				if got := len(members(t, env)); got != int(n) {
					t.Errorf("scaled to %d but %d members exist", n, got)
				}
			}
		})
	}
}

func assertMembersWellFormed(t *testing.T, env *framework.Env, pool *extv1beta1.SandboxWarmPool) {
	t.Helper()
	ms := members(t, env)
	for i := range ms {
		sb := &ms[i]
		wantLabels := map[string]string{
			agentsv1beta1.WarmPoolSandboxLabel:        agentsv1beta1.NameHash("pool"),
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
			agentsv1beta1.LaunchTypeLabel:             agentsv1beta1.LaunchTypeWarm,
			agentsv1beta1.CreatedByLabel:              agentsv1beta1.CreatedByController,
		}
		for k, v := range wantLabels {
			if sb.Labels[k] != v {
				t.Errorf("member %s label %s = %q, want %q", sb.Name, k, sb.Labels[k], v)
			}
		}
		if sb.Labels[agentsv1beta1.SandboxTemplateHashLabel] == "" || sb.Labels[agentsv1beta1.SandboxPodTemplateHashLabel] == "" {
			t.Errorf("member %s lacks the template hash labels: %v", sb.Name, sb.Labels)
		}
		if !strings.HasPrefix(sb.Name, "pool-") || sb.Annotations[agentsv1beta1.SandboxTemplateRefAnnotation] != "python" {
			t.Errorf("member %s: want generateName pool- and the template annotation", sb.Name)
		}
		if ref := metav1.GetControllerOf(sb); ref == nil || ref.UID != pool.UID {
			t.Errorf("member %s controller %+v, want the pool", sb.Name, ref)
		}
		pm := sb.Spec.PodTemplate
		if sb.Annotations[agentsv1beta1.SafeToEvictAnnotation] != "true" || len(pm.ObjectMeta.Labels) != 1 || pm.ObjectMeta.Labels["app"] != "agent" {
			t.Errorf("member %s: annotations %v, pod metadata %+v; want safe-to-evict on the Sandbox and exactly the template's pod labels",
				sb.Name, sb.Annotations, pm.ObjectMeta)
		}
		if pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(context.Background(), sb.Name, metav1.GetOptions{}); err == nil &&
			pod.Annotations[agentsv1beta1.SafeToEvictAnnotation] != "true" {
			t.Errorf("member %s Pod annotations %v: want the eviction hint", sb.Name, pod.Annotations)
		}
		if pm.Spec.AutomountServiceAccountToken == nil || *pm.Spec.AutomountServiceAccountToken ||
			pm.Spec.DNSPolicy != corev1.DNSNone {
			t.Errorf("member %s lacks the secure defaults: automount %v dnsPolicy %q", sb.Name, pm.Spec.AutomountServiceAccountToken, pm.Spec.DNSPolicy)
		}
	}
	// The Pods carry the pool label, so the scale selector matches them.
	pods, err := env.Kube.CoreV1().Pods(env.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: agentsv1beta1.WarmPoolSandboxLabel + "=" + agentsv1beta1.NameHash("pool"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != len(members(t, env)) {
		t.Errorf("%d pods match the pool selector, want one per member", len(pods.Items))
	}
}

func TestTemplateChangeRollsMembers(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, allControllers...)
	ctx := framework.Context(t, timeout)
	pool := setup(t, env, 5, extv1beta1.RecreateSandboxWarmPoolUpdateStrategyType)
	w := watchOwnership(t, env, pool.UID)
	waitPool(t, env, 5)
	old := map[string]bool{}
	for _, sb := range members(t, env) {
		old[sb.Name] = true
	}

	// A label edit is not a change of what runs: nothing rolls.
	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)
	tmpl, err := templates.Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Spec.PodTemplate.ObjectMeta.Labels["tier"] = "gold"
	if tmpl, err = templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, sb := range members(t, env) {
		if !old[sb.Name] {
			t.Fatalf("a metadata-only template edit replaced member %s", sb.Name)
		}
	}

	tmpl.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ms := members(t, env)
		if len(ms) != 5 {
			return false, nil
		}
		for _, sb := range ms {
			if old[sb.Name] || sb.Spec.PodTemplate.Spec.Containers[0].Image != "python:3.14" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal("members were not all replaced with the new image")
	}
	waitPool(t, env, 5)
	if m := w.maxOwned(); m > 5 {
		t.Errorf("the pool owned %d members during the roll; replicas is 5", m)
	}
}

func TestPoolDeletionSparesAdoptedMembers(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, allControllers...)
	ctx := framework.Context(t, timeout)
	setup(t, env, 3, "")
	waitPool(t, env, 3)

	// What a claim does at adoption: take control, drop the pool label.
	claimer, err := env.Kube.CoreV1().ConfigMaps(env.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "claimer"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adopted := members(t, env)[0]
	adopted.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(claimer, corev1.SchemeGroupVersion.WithKind("ConfigMap"))}
	delete(adopted.Labels, agentsv1beta1.WarmPoolSandboxLabel)
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Update(ctx, &adopted, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The pool replaces the member it lost.
	waitPool(t, env, 3)

	if err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Delete(ctx, "pool", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return len(members(t, env)) == 0, nil
	})
	if err != nil {
		t.Fatalf("%d unadopted members survive the pool", len(members(t, env)))
	}
	if _, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, adopted.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Error("deleting the pool deleted an adopted member")
	}
}

// TestFillOf200 logs how long 200 members take to become Ready and how
// many API writes that cost, for the record (not asserted).
func TestFillOf200(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, allControllers...)
	before := env.APIWrites(t)
	start := time.Now()
	setup(t, env, 200, "")
	waitPool(t, env, 200)
	elapsed := time.Since(start)
	after := env.APIWrites(t)
	t.Logf("200 members Ready in %s; API writes (all clients, by resource): %v", elapsed.Round(time.Millisecond), framework.WritesSince(before, after))
}

// TestOnReplenishKeepsMembersUntilReplaced: under the default strategy a
// template change rolls nothing by itself; a member that goes (deleted or
// claimed) is replaced from the new template.
func TestOnReplenishKeepsMembersUntilReplaced(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, allControllers...)
	ctx := framework.Context(t, timeout)
	setup(t, env, 3, "")
	waitPool(t, env, 3)
	before := members(t, env)

	templates := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace)
	tmpl, err := templates.Get(ctx, "python", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Spec.PodTemplate.Spec.Containers[0].Image = "python:3.14"
	if _, err := templates.Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := members(t, env); len(got) != 3 || got[0].Spec.PodTemplate.Spec.Containers[0].Image != "python:3.13" {
		t.Fatalf("OnReplenish rolled members on a template change: %d members", len(got))
	}

	gone := before[0].Name
	if err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ms := members(t, env)
		if len(ms) != 3 {
			return false, nil
		}
		fresh, old := 0, 0
		for _, sb := range ms {
			switch sb.Spec.PodTemplate.Spec.Containers[0].Image {
			case "python:3.14":
				fresh++
			case "python:3.13":
				old++
			}
			if sb.Name == gone {
				return false, nil
			}
		}
		return fresh == 1 && old == 2, nil
	})
	if err != nil {
		t.Fatal("the replacement did not come from the new template while the rest stayed")
	}
}
