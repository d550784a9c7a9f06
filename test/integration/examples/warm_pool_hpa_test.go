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

package examples

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestWarmPoolHPA runs docs/examples/warm-pool-hpa/README.md: the pool
// starts at the API default of one member, kubectl scale drives it through
// the scale subresource, and the HPA of kube-controller-manager raises it
// to minReplicas through the same subresource. There is no external
// metrics API on the local cluster, so the HPA must say so
// (ScalingActive=False, FailedGetExternalMetric) rather than scale on
// nothing.
func TestWarmPoolHPA(t *testing.T) {
	f := setup(t, false)
	const pool = "autoscaled-pool"

	out := f.kubectl("apply", "-f", example("warm-pool-hpa", "pool.yaml"))
	want := "sandboxtemplate.extensions.agents.x-k8s.io/autoscaled created\n" +
		"sandboxwarmpool.extensions.agents.x-k8s.io/autoscaled-pool created\n"
	if out != want {
		t.Errorf("kubectl apply printed %q, want %q", out, want)
	}
	f.waitPoolReady(pool, 1)

	if out := f.kubectl("scale", "swp/"+pool, "--replicas=3"); out != "sandboxwarmpool.extensions.agents.x-k8s.io/autoscaled-pool scaled\n" {
		t.Errorf("kubectl scale printed %q", out)
	}
	f.waitPoolReady(pool, 3)
	if out := f.kubectl("scale", "swp/"+pool, "--replicas=1"); out != "sandboxwarmpool.extensions.agents.x-k8s.io/autoscaled-pool scaled\n" {
		t.Errorf("kubectl scale printed %q", out)
	}
	f.waitPoolReady(pool, 1)

	if out := f.kubectl("apply", "-f", example("warm-pool-hpa", "hpa.yaml")); out != "horizontalpodautoscaler.autoscaling/autoscaled-pool created\n" {
		t.Errorf("kubectl apply hpa.yaml printed %q", out)
	}
	// The HPA controller's first pass finds the pool below minReplicas
	// and scales it before it looks at any metric.
	if out := f.kubectl("wait", "swp/"+pool, "--for=jsonpath={.spec.replicas}=2", "--timeout="+waitTimeout.String()); out != "sandboxwarmpool.extensions.agents.x-k8s.io/autoscaled-pool condition met\n" {
		t.Errorf("kubectl wait spec.replicas printed %q", out)
	}
	f.waitPoolReady(pool, 2)

	// A later pass needs the metric, which nothing serves here.
	var hpa *autoscalingv2.HorizontalPodAutoscaler
	err := wait.PollUntilContextTimeout(f.ctx, time.Second, waitTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		hpa, err = f.env.Kube.AutoscalingV2().HorizontalPodAutoscalers(f.env.Namespace).Get(ctx, pool, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c := hpaCondition(hpa, autoscalingv2.ScalingActive)
		return c != nil && c.Reason == "FailedGetExternalMetric", nil
	})
	if err != nil {
		t.Fatalf("the HPA never reported the missing metric: %+v", hpa.Status)
	}
	if c := hpaCondition(hpa, autoscalingv2.AbleToScale); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("AbleToScale = %+v, want True: the HPA reads and writes the pool's scale subresource", c)
	}
	if c := hpaCondition(hpa, autoscalingv2.ScalingActive); c.Status != corev1.ConditionFalse {
		t.Errorf("ScalingActive = %+v, want False", c)
	}
	if hpa.Status.CurrentReplicas != 2 || hpa.Status.DesiredReplicas != 2 {
		t.Errorf("HPA status replicas current %d desired %d, want 2 and 2", hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas)
	}
	header := "NAME              REFERENCE                         TARGETS                MINPODS   MAXPODS   REPLICAS   AGE\n"
	row := "autoscaled-pool   SandboxWarmPool/autoscaled-pool   <unknown>/500m (avg)   2         50        2          "
	if out := f.kubectl("get", "hpa", pool); !strings.HasPrefix(out, header+row) {
		t.Errorf("kubectl get hpa printed %q, want the pool as reference, an unknown metric, min 2, max 50, 2 replicas", out)
	}
	out = f.kubectl("get", "hpa", pool, "-o", "jsonpath="+hpaConditionsJSONPath)
	if want := "AbleToScale=True SucceededGetScale\nScalingActive=False FailedGetExternalMetric\n"; out != want {
		t.Errorf("the HPA's conditions: %q, want %q", out, want)
	}
}

// hpaConditionsJSONPath is the README's one-line-per-condition view.
const hpaConditionsJSONPath = `{range .status.conditions[*]}{.type}={.status} {.reason}{"\n"}{end}`

func hpaCondition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType) *autoscalingv2.HorizontalPodAutoscalerCondition {
	for i := range hpa.Status.Conditions {
		if hpa.Status.Conditions[i].Type == t {
			return &hpa.Status.Conditions[i]
		}
	}
	return nil
}
