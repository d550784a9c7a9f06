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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Metric names and buckets are the reference's: dashboards query them.
var (
	claimLatencyBuckets    = []float64{100, 250, 500, 750, 1000, 1250, 1500, 2000, 2500, 5000, 10000, 30000, 60000, 120000, 240000}
	creationLatencyBuckets = []float64{50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 240000, 300000, 600000}
)

// Metrics are the claim controller's metrics.
type Metrics struct {
	controllerStartup *prometheus.HistogramVec
	clientStartup     *prometheus.HistogramVec
	webhookStartup    *prometheus.HistogramVec
	creationLatency   *prometheus.HistogramVec
	creations         *prometheus.CounterVec
}

// NewMetrics registers the claim metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"launch_type", "sandbox_template"}
	m := &Metrics{
		controllerStartup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agent_sandbox_claim_controller_startup_latency_ms",
			Help:    "Milliseconds from the controller first seeing a claim to the claim's first Ready.",
			Buckets: claimLatencyBuckets,
		}, labels),
		clientStartup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agent_sandbox_client_claim_startup_latency_ms",
			Help:    "Milliseconds from the client's request (agents.x-k8s.io/client-first-requested-at) to the claim's first Ready.",
			Buckets: claimLatencyBuckets,
		}, labels),
		webhookStartup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agent_sandbox_claim_startup_latency_ms",
			Help:    "Milliseconds from admission (agents.x-k8s.io/webhook-first-observed-at) to the claim's first Ready.",
			Buckets: claimLatencyBuckets,
		}, labels),
		creationLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agent_sandbox_creation_latency_ms",
			Help:    "Milliseconds from a claim's Sandbox being created to it becoming Ready.",
			Buckets: creationLatencyBuckets,
		}, []string{"namespace", "launch_type", "sandbox_template"}),
		creations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_sandbox_claim_creation_total",
			Help: "Claims bound to a Sandbox, warm (adopted from a pool) or cold (created).",
		}, []string{"namespace", "sandbox_template", "launch_type", "warmpool_name", "pod_condition", "created_by"}),
	}
	for _, c := range []prometheus.Collector{m.controllerStartup, m.clientStartup, m.webhookStartup, m.creationLatency, m.creations} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func normalizeCreatedBy(v string) string {
	switch v {
	case agentsv1beta1.CreatedByGoClient, agentsv1beta1.CreatedByPythonClient, agentsv1beta1.CreatedByController:
		return v
	}
	return agentsv1beta1.CreatedByUnknown
}

// bound counts a claim bound to sb.
func (m *Metrics) bound(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox, launchType, template string) {
	if m == nil {
		return
	}
	podCondition := "not_ready"
	if meta.IsStatusConditionTrue(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)) {
		podCondition = "ready"
	}
	m.creations.WithLabelValues(claim.Namespace, template, launchType, claim.Spec.WarmPoolRef.Name, podCondition,
		normalizeCreatedBy(claim.Labels[agentsv1beta1.CreatedByLabel])).Inc()
}

// firstReady records the startup latencies of a claim whose Ready turned
// True in a status write of ours. Counting only that transition records
// each claim once, also across restarts: a claim Ready before the restart
// has no transition left to count.
func (m *Metrics) firstReady(claim *extv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox, firstSeen, now time.Time) {
	if m == nil || sb == nil {
		return
	}
	launch := sb.Labels[agentsv1beta1.LaunchTypeLabel]
	if launch != agentsv1beta1.LaunchTypeWarm {
		launch = agentsv1beta1.LaunchTypeCold
	}
	template := sb.Annotations[agentsv1beta1.SandboxTemplateRefAnnotation]
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) }
	if !firstSeen.IsZero() {
		m.controllerStartup.WithLabelValues(launch, template).Observe(ms(now.Sub(firstSeen)))
	}
	for annotation, h := range map[string]*prometheus.HistogramVec{
		extv1beta1.ClientFirstRequestedAtAnnotation: m.clientStartup,
		extv1beta1.WebhookFirstObservedAtAnnotation: m.webhookStartup,
	} {
		if t, err := time.Parse(time.RFC3339Nano, claim.Annotations[annotation]); err == nil && !now.Before(t) {
			h.WithLabelValues(launch, template).Observe(ms(now.Sub(t)))
		}
	}
	if r := meta.FindStatusCondition(sb.Status.Conditions, string(agentsv1beta1.SandboxConditionReady)); r != nil && r.Status == "True" {
		m.creationLatency.WithLabelValues(claim.Namespace, launch, template).Observe(ms(r.LastTransitionTime.Sub(sb.CreationTimestamp.Time)))
	}
}
