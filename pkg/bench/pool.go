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

package bench

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// benchPool is the name of the template and the pool of every scenario.
const benchPool = "bench"

// createTemplate makes the SandboxTemplate of the pool: one pause
// container and nothing else, so a member costs what a bare Pod costs and
// the comparison with the ReplicaSet is fair. It lets claims set env and
// opts in to warm env (metadata only: members are the same), which only
// SteadyWarmEnv's claims use.
func (e *Env) createTemplate(ctx context.Context, ns string, writes *writeCounter) error {
	writes.inc()
	_, err := e.Agents.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: benchPool, Annotations: map[string]string{extv1beta1.WarmEnvPortAnnotation: "8888"}},
		Spec: extv1beta1.SandboxTemplateSpec{
			SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
				PodTemplate: agentsv1beta1.PodTemplate{Spec: podSpec()},
			},
			EnvVarsInjectionPolicy: extv1beta1.EnvVarsInjectionPolicyAllowed,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating sandbox template: %w", err)
	}
	return nil
}

func (e *Env) createPool(ctx context.Context, ns string, n int, writes *writeCounter) error {
	writes.inc()
	_, err := e.Agents.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, poolObject(benchPool, n), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating warm pool: %w", err)
	}
	return nil
}

// poolObject is a warm pool of n members of the bench template.
func poolObject(name string, n int) *extv1beta1.SandboxWarmPool {
	return &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxWarmPoolSpec{
			Replicas:    ptr.To(int32(n)),
			TemplateRef: extv1beta1.SandboxTemplateRef{Name: benchPool},
		},
	}
}

// fillPool creates the template and a pool of n in ns (watched by w) and
// measures the fill: from the pool's create request until its status and
// the watch both show n Ready members.
func (e *Env) fillPool(ctx context.Context, ns string, w *agentWatch, n int) (*FillResult, error) {
	var writes writeCounter
	if err := e.createTemplate(ctx, ns, &writes); err != nil {
		return nil, err
	}
	// The template's own reaction (its NetworkPolicy) is not part of the
	// fill.
	time.Sleep(e.Settle / 2)
	win, err := e.openWindow(ctx, &writes)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	w.mu.Lock()
	w.curve, w.statusCurve = NewCurve(start), NewCurve(start)
	w.mu.Unlock()
	if err := e.createPool(ctx, ns, n, &writes); err != nil {
		return nil, err
	}
	if err := e.waitUntil(ctx, fmt.Sprintf("pool of %d Ready", n), func() (bool, string) { return w.poolFull(n) }); err != nil {
		return nil, err
	}
	d := w.fullAt(n)
	time.Sleep(e.Settle)
	cost, err := win.close(ctx)
	if err != nil {
		return nil, err
	}
	w.checker.CheckPoolBound(benchPool, n)
	r := &FillResult{
		Size: n, FillSeconds: round3(d.Seconds()), Curve: w.curvePoints(), Cost: cost,
		MaxMembers: w.checker.MaxPoolMembers(benchPool),
	}
	writesN, measured := cost.ControllerWritesOrEstimate()
	r.ControllerWritesPerMember, r.WritesMeasured = round3(writesN/float64(n)), measured
	return r, nil
}

// poolScenario is the start every pool scenario shares: a fresh namespace,
// watches on its Sandboxes and claims, and a pool of size filled and
// measured. done stops the watches and deletes the namespace; call it even
// when err is set. claims says the scenario will create claims, whose
// critical paths need the write log.
func (e *Env) poolScenario(ctx context.Context, scenario string, size int, claims bool) (ns string, w *agentWatch, fill *FillResult, done func(), err error) {
	done = func() {}
	ns, err = e.namespace(ctx, scenario)
	if err != nil {
		return "", nil, nil, done, err
	}
	done = func() { e.deleteNamespace(context.WithoutCancel(ctx), ns) }
	w, stop, err := e.watchAgents(ctx, ns, benchPool, time.Now(), claims)
	if err != nil {
		return ns, nil, nil, done, err
	}
	done = func() { stop(); e.deleteNamespace(context.WithoutCancel(ctx), ns) }
	fill, err = e.fillPool(ctx, ns, w, size)
	return ns, w, fill, done, err
}

// Pool measures filling a warm pool of n: time to n Ready members, the fill
// curve, the most members ever seen at once, and writes per member.
func (e *Env) Pool(ctx context.Context, n int) (*FillResult, error) {
	e.Progress.Scenario("pool")
	_, w, r, done, err := e.poolScenario(ctx, "pool", n, false)
	defer done()
	if err != nil {
		return nil, err
	}
	r.Violations = w.checker.Violations()
	e.Progress.Logf("pool of %d Ready in %.2fs, %.2f controller writes per member, at most %d members", n, r.FillSeconds, r.ControllerWritesPerMember, r.MaxMembers)
	return r, nil
}

// fullAt is when the pool was first seen full: n Ready members on the
// watch and n ready replicas in its status, whichever came last.
func (w *agentWatch) fullAt(n int) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	members, _ := w.curve.TimeTo(n)
	status, _ := w.statusCurve.TimeTo(n)
	return max(members, status)
}
