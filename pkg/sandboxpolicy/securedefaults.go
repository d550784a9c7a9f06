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

package sandboxpolicy

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// DefaultNameservers are the resolvers of SecureDefaults without
// Nameservers: the reference's, public, so the secure default NetworkPolicy
// (which blocks every private range, cluster DNS included) lets them
// through.
var DefaultNameservers = []string{"8.8.8.8", "1.1.1.1"}

// maxNameservers is the API server's limit on dnsConfig.nameservers.
const maxNameservers = 3

// SecureDefaults hardens the Sandboxes that pools and claims build from a
// template. The zero value is the reference's behaviour.
type SecureDefaults struct {
	// Nameservers replace cluster DNS for Pods under the secure default
	// NetworkPolicy (--secure-default-nameservers); empty means
	// DefaultNameservers. They must be reachable through that policy, so
	// public addresses. A template that needs other resolvers sets its own
	// dnsPolicy (and dnsConfig), which these defaults never override.
	Nameservers []string
}

// Apply hardens the pod spec of a Sandbox built from tmpl (by a warm pool
// or a claim; a Sandbox created directly is left as its author wrote it):
// no service-account token unless asked for, and the resolvers when the
// template runs under the secure default NetworkPolicy.
func (d SecureDefaults) Apply(tmpl *extv1beta1.SandboxTemplate, spec *corev1.PodSpec) {
	if spec.AutomountServiceAccountToken == nil {
		automount := false
		spec.AutomountServiceAccountToken = &automount
	}
	managed := tmpl.Spec.NetworkPolicyManagement == "" || tmpl.Spec.NetworkPolicyManagement == extv1beta1.NetworkPolicyManagementManaged
	if managed && tmpl.Spec.NetworkPolicy == nil && spec.DNSPolicy == "" {
		nameservers := d.Nameservers
		if len(nameservers) == 0 {
			nameservers = DefaultNameservers
		}
		spec.DNSPolicy = corev1.DNSNone
		spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: append([]string(nil), nameservers...)}
	}
}

// ParseNameservers reads a comma-separated list of resolver addresses (the
// --secure-default-nameservers flag): empty gives nil (DefaultNameservers);
// otherwise one to three IP addresses, which the API server would
// otherwise reject on every Sandbox the pools and claims create.
func ParseNameservers(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		addr, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("nameserver %q: %w", strings.TrimSpace(f), err)
		}
		out = append(out, addr.String())
	}
	if len(out) > maxNameservers {
		return nil, fmt.Errorf("%d nameservers: a Pod takes at most %d", len(out), maxNameservers)
	}
	return out, nil
}
