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
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

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
	// The claim's identity labels are on the Sandbox, not in its pod
	// template (they would never reach the Pod from there).
	want := map[string]string{"app": "agent", "sandbox.users.io/team": "blue"}
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("labels (-want,+got):\n%s", diff)
	}

	_, err = podMetadata(claimWith(map[string]string{"app": "other"}, nil), tmpl)
	if err == nil || !strings.Contains(err.Error(), "metadata override conflict") {
		t.Errorf("err %v, want a metadata override conflict", err)
	}
}

// A claim without additionalPodMetadata takes a member built from the
// current template without touching its spec, so the Sandbox's generation
// (and status) stays; a member of an older version (pool labels and the
// eviction hint in its pod template) or a claim with extra metadata
// changes the pod template, replacing it whole.
func TestTakeoverPatchTouchesSpecOnlyWhenNeeded(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python"}}
	tmpl.Spec.PodTemplate.ObjectMeta = agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}}
	member := func(podLabels, podAnnotations map[string]string) *agentsv1beta1.Sandbox {
		sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
			Name: "pool-x", ResourceVersion: "7",
			Labels:      map[string]string{agentsv1beta1.WarmPoolSandboxLabel: "h"},
			Annotations: map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true", agentsv1beta1.WarmPoolMemberAnnotation: "pool-uid"},
		}}
		sb.Spec.PodTemplate.ObjectMeta = agentsv1beta1.PodMetadata{Labels: podLabels, Annotations: podAnnotations}
		return sb
	}
	decode := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	plain := claimWith(nil, nil)
	b, err := takeoverPatch(plain, nil, tmpl, member(map[string]string{"app": "agent"}, nil), time.Time{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := decode(b)
	if _, ok := got["spec"]; ok {
		t.Errorf("plain claim on a current member: patch %s changes the spec", b)
	}
	md := got["metadata"].(map[string]any)
	if md["resourceVersion"] != "7" {
		t.Errorf("patch %s lacks the resourceVersion precondition", b)
	}
	if ann, _ := md["annotations"].(map[string]any); ann == nil || ann[agentsv1beta1.SafeToEvictAnnotation] != nil {
		t.Errorf("patch %s does not remove the Sandbox's eviction hint", b)
	} else if _, ok := ann[agentsv1beta1.SafeToEvictAnnotation]; !ok {
		t.Errorf("patch %s does not remove the Sandbox's eviction hint", b)
	}
	if ann, _ := md["annotations"].(map[string]any); ann == nil {
		t.Errorf("patch %s does not remove the pool member annotation", b)
	} else if v, ok := ann[agentsv1beta1.WarmPoolMemberAnnotation]; !ok || v != nil {
		t.Errorf("patch %s does not remove the pool member annotation", b)
	}
	if labels := md["labels"].(map[string]any); labels[agentsv1beta1.SandboxIDLabel] != "claim-uid" || labels[agentsv1beta1.WarmPoolSandboxLabel] != nil {
		t.Errorf("patch %s: want the claim-uid label set and the pool label removed", b)
	}

	legacy := member(map[string]string{"app": "agent", agentsv1beta1.WarmPoolSandboxLabel: "h"},
		map[string]string{agentsv1beta1.SafeToEvictAnnotation: "true"})
	b, err = takeoverPatch(plain, nil, tmpl, legacy, time.Time{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"podTemplate": map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{"app": "agent", agentsv1beta1.WarmPoolSandboxLabel: nil},
		"annotations": map[string]any{agentsv1beta1.SafeToEvictAnnotation: nil},
	}}}
	if diff := cmp.Diff(want, decode(b)["spec"]); diff != "" {
		t.Errorf("older member: spec patch (-want,+got):\n%s", diff)
	}

	extra := claimWith(map[string]string{"sandbox.users.io/team": "blue"}, nil)
	b, err = takeoverPatch(extra, nil, tmpl, member(map[string]string{"app": "agent"}, nil), time.Time{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"podTemplate": map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{"app": "agent", "sandbox.users.io/team": "blue"},
		"annotations": map[string]any{},
	}}}
	if diff := cmp.Diff(want, decode(b)["spec"]); diff != "" {
		t.Errorf("claim with additionalPodMetadata: spec patch (-want,+got):\n%s", diff)
	}

	// The trace context goes on the Sandbox itself, in the same write,
	// and never into the pod template (it is not copied to Pods).
	const traceContext = `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`
	b, err = takeoverPatch(plain, nil, tmpl, member(map[string]string{"app": "agent"}, nil), time.Time{}, "", traceContext)
	if err != nil {
		t.Fatal(err)
	}
	got = decode(b)
	if ann, _ := got["metadata"].(map[string]any)["annotations"].(map[string]any); ann[agentsv1beta1.TraceContextAnnotation] != traceContext {
		t.Errorf("patch %s does not carry the trace context", b)
	}
	if _, ok := got["spec"]; ok {
		t.Errorf("patch %s with a trace context changes the spec", b)
	}
}
