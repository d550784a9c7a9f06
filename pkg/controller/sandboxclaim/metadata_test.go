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
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func claimWith(labels, annotations map[string]string) *extv1beta1.SandboxClaim {
	return &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "claim-uid"},
		Spec: extv1beta1.SandboxClaimSpec{AdditionalPodMetadata: agentsv1beta1.PodMetadata{
			Labels: labels, Annotations: annotations,
		}},
	}
}

func TestValidateMetadata(t *testing.T) {
	domains := []string{"sandbox.users.io"}
	tests := map[string]struct {
		labels, annotations map[string]string
		wantIn              string // "" means valid
	}{
		"allowed domain and subdomain": {labels: map[string]string{"sandbox.users.io/team": "a", "x.sandbox.users.io/y": "b"}},
		"unprefixed label":             {labels: map[string]string{"team": "a"}, wantIn: "must be prefixed"},
		"reserved label prefix":        {labels: map[string]string{agentsv1beta1.SandboxNameHashLabel: "x"}, wantIn: "must be prefixed"},
		"look-alike domain":            {labels: map[string]string{"evilsandbox.users.io/x": "a"}, wantIn: "must be prefixed"},
		"bad label value":              {labels: map[string]string{"sandbox.users.io/x": "not ok!"}, wantIn: "invalid value"},
		"reserved annotation domain":   {annotations: map[string]string{"foo.kubernetes.io/x": "1"}, wantIn: "reserved domain"},
		"agents annotation":            {annotations: map[string]string{agentsv1beta1.PodNameAnnotation: "p"}, wantIn: "reserved domain"},
		"eviction hint is allowed":     {annotations: map[string]string{agentsv1beta1.SafeToEvictAnnotation: "false"}},
		"plain annotation":             {annotations: map[string]string{"note": "anything goes"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := validateMetadata(claimWith(tc.labels, tc.annotations), domains)
			if tc.wantIn == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *claimError
			if !errors.As(err, &ce) || ce.reason != extv1beta1.ClaimReasonInvalidMetadata || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("err %v, want InvalidMetadata containing %q", err, tc.wantIn)
			}
		})
	}
}

func TestPodMetadataNeverOverridesTheTemplate(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python"}}
	tmpl.Spec.PodTemplate.ObjectMeta = agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}}

	got, err := podMetadata(claimWith(map[string]string{"sandbox.users.io/team": "blue", "app": "agent"}, nil), tmpl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"app": "agent", "sandbox.users.io/team": "blue",
		agentsv1beta1.SandboxIDLabel:              "claim-uid",
		agentsv1beta1.SandboxTemplateRefHashLabel: agentsv1beta1.NameHash("python"),
	}
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("labels (-want,+got):\n%s", diff)
	}

	_, err = podMetadata(claimWith(map[string]string{"app": "other"}, nil), tmpl)
	if err == nil || !strings.Contains(err.Error(), "metadata override conflict") {
		t.Errorf("err %v, want a metadata override conflict", err)
	}
}
