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

package controller

import (
	corev1 "k8s.io/api/core/v1"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// PublicNameservers replace cluster DNS for Pods under the secure default
// NetworkPolicy, which blocks every private range and so cluster DNS too.
var PublicNameservers = []string{"8.8.8.8", "1.1.1.1"}

// ApplySecureDefaults hardens the pod spec of a Sandbox built from tmpl (by
// a warm pool or a claim; a Sandbox created directly is left as its author
// wrote it): no service-account token unless asked for, and public DNS when
// the template runs under the secure default NetworkPolicy.
func ApplySecureDefaults(tmpl *extv1beta1.SandboxTemplate, spec *corev1.PodSpec) {
	if spec.AutomountServiceAccountToken == nil {
		automount := false
		spec.AutomountServiceAccountToken = &automount
	}
	managed := tmpl.Spec.NetworkPolicyManagement == "" || tmpl.Spec.NetworkPolicyManagement == extv1beta1.NetworkPolicyManagementManaged
	if managed && tmpl.Spec.NetworkPolicy == nil && spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSNone
		spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: append([]string(nil), PublicNameservers...)}
	}
}
