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

package sandbox

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	listers "github.com/agentsandbox/agent-sandbox/generated/listers/agents/v1beta1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

var sandboxesDesc = prometheus.NewDesc("agent_sandboxes",
	"Number of Sandboxes, by namespace, readiness, expiry, launch type, template, owner kind and origin.",
	[]string{"namespace", "ready_condition", "expired", "launch_type", "sandbox_template", "owned_by", "created_by"}, nil)

// sandboxCollector computes agent_sandboxes from the informer cache at
// each scrape: no state to keep in step, no API call.
type sandboxCollector struct {
	lister listers.SandboxLister
	owners controller.OwnerRules
}

// NewSandboxCollector returns the agent_sandboxes collector over lister.
// owned_by is the kind of the Sandbox's controller when owners name that
// kind (the Sandbox controller's Options.Owners), else "None".
func NewSandboxCollector(lister listers.SandboxLister, owners controller.OwnerRules) prometheus.Collector {
	return &sandboxCollector{lister: lister, owners: owners}
}

func (s *sandboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sandboxesDesc }

func (s *sandboxCollector) Collect(ch chan<- prometheus.Metric) {
	all, err := s.lister.List(labels.Everything())
	if err != nil {
		return
	}
	type key [7]string
	counts := map[key]int{}
	for _, sb := range all {
		reason := readyReason(sb)
		launch := agentsv1beta1.LaunchTypeCold
		if sb.Labels[agentsv1beta1.LaunchTypeLabel] == agentsv1beta1.LaunchTypeWarm {
			launch = agentsv1beta1.LaunchTypeWarm
		}
		template := sb.Annotations[agentsv1beta1.SandboxTemplateRefAnnotation]
		if template == "" {
			template = "unknown"
		}
		owner := s.owners.OwnerKind(sb)
		if owner == "" {
			owner = "None"
		}
		createdBy := agentsv1beta1.CreatedByUnknown
		if v := sb.Labels[agentsv1beta1.CreatedByLabel]; v != "" {
			createdBy = NormalizeCreatedBy(v)
		}
		counts[key{sb.Namespace, strconv.FormatBool(isReady(sb)), strconv.FormatBool(reason == agentsv1beta1.SandboxReasonExpired),
			launch, template, owner, createdBy}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(sandboxesDesc, prometheus.GaugeValue, float64(n), k[:]...)
	}
}
