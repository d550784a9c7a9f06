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

package sandboxtemplate

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Where the sandbox router runs: the only ingress the secure default
// allows.
const (
	RouterNamespace = "agent-sandbox-system"
	RouterAppLabel  = "sandbox-router"
)

// policyNameSuffix makes a template's name its policy's.
const policyNameSuffix = "-network-policy"

// PolicyName is the name of a template's shared NetworkPolicy.
func PolicyName(templateName string) string { return templateName + policyNameSuffix }

// privateIPv4 and privateIPv6 are the ranges the secure default blocks:
// cluster-internal networks, link-local and the cloud metadata endpoints.
var (
	privateIPv4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
	privateIPv6 = []string{"fc00::/7", "fe80::/10"}
)

// DesiredPolicySpec is the NetworkPolicy spec for a Managed template: the
// template's own rules when it gives them, else the secure default, which
// admits only the sandbox router and lets traffic out only to public
// addresses.
func DesiredPolicySpec(tmpl *extv1beta1.SandboxTemplate) networkingv1.NetworkPolicySpec {
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{
			agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash(tmpl.Name),
		}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
	}
	if np := tmpl.Spec.NetworkPolicy; np != nil {
		for i := range np.Ingress {
			spec.Ingress = append(spec.Ingress, *np.Ingress[i].DeepCopy())
		}
		for i := range np.Egress {
			spec.Egress = append(spec.Egress, *np.Egress[i].DeepCopy())
		}
		return spec
	}
	spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{
			// One peer with both selectors: router Pods AND in the router's
			// namespace.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": RouterNamespace}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": RouterAppLabel}},
		}},
	}}
	spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: append([]string(nil), privateIPv4...)}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: append([]string(nil), privateIPv6...)}},
		},
	}}
	return spec
}
