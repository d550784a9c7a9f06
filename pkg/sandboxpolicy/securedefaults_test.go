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
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func TestSecureDefaultsApply(t *testing.T) {
	custom := SecureDefaults{Nameservers: []string{"192.0.2.53"}}
	tests := map[string]struct {
		defaults SecureDefaults
		tmpl     extv1beta1.SandboxTemplateSpec
		spec     corev1.PodSpec
		want     corev1.PodSpec
	}{
		"zero value: the reference's resolvers": {
			want: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), DNSPolicy: corev1.DNSNone,
				DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"8.8.8.8", "1.1.1.1"}}},
		},
		"configured resolvers": {
			defaults: custom,
			want: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), DNSPolicy: corev1.DNSNone,
				DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}}},
		},
		"the template's own dnsPolicy wins": {
			defaults: custom,
			spec:     corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, AutomountServiceAccountToken: ptr.To(true)},
			want:     corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst, AutomountServiceAccountToken: ptr.To(true)},
		},
		"a custom NetworkPolicy keeps cluster DNS": {
			defaults: custom,
			tmpl:     extv1beta1.SandboxTemplateSpec{NetworkPolicy: &extv1beta1.NetworkPolicySpec{}},
			want:     corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false)},
		},
		"Unmanaged keeps cluster DNS": {
			defaults: custom,
			tmpl:     extv1beta1.SandboxTemplateSpec{NetworkPolicyManagement: extv1beta1.NetworkPolicyManagementUnmanaged},
			want:     corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl := &extv1beta1.SandboxTemplate{Spec: tc.tmpl}
			spec := tc.spec
			tc.defaults.Apply(tmpl, &spec)
			if diff := cmp.Diff(tc.want, spec); diff != "" {
				t.Errorf("pod spec (-want,+got):\n%s", diff)
			}
		})
	}
}

// A member built with other resolvers than the checker's is stale: it
// does not run what the pool would build now.
func TestStalenessFollowsSecureDefaults(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python"}}
	tmpl.Spec.PodTemplate.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "python:3.13"}}}
	custom := SecureDefaults{Nameservers: []string{"192.0.2.53", "198.51.100.53"}}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
	}}}
	sb.Spec.SandboxBlueprint = *tmpl.Spec.SandboxBlueprint.DeepCopy()
	custom.Apply(tmpl, &sb.Spec.PodTemplate.Spec)

	if !NewStalenessChecker(tmpl, custom).Matches(sb) {
		t.Error("a member built with the checker's defaults does not match")
	}
	if NewStalenessChecker(tmpl, SecureDefaults{}).Matches(sb) {
		t.Error("a member built with other resolvers matches")
	}
}

func TestParseNameservers(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr bool
	}{
		"empty is the default":   {in: "", want: nil},
		"blank is the default":   {in: "  ", want: nil},
		"IPv4 and IPv6, spaced":  {in: "192.0.2.53, 2001:db8::53", want: []string{"192.0.2.53", "2001:db8::53"}},
		"not an address":         {in: "dns.example", wantErr: true},
		"an empty entry":         {in: "192.0.2.53,", wantErr: true},
		"more than a Pod allows": {in: "192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseNameservers(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("nameservers (-want,+got):\n%s", diff)
			}
		})
	}
}
