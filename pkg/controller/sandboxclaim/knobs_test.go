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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

const (
	wakeKey = agentsv1beta1.WakeOnRequestAnnotation
	idleKey = agentsv1beta1.IdleTimeoutAnnotation
	lastKey = agentsv1beta1.LastActivityAnnotation
)

// The wake and idle knobs reach the claim's Sandbox in the write the claim
// path sends anyway: the pool's value wins over the template's, a member's
// stray value is removed, and an idle opt-in starts its window at the
// takeover, not at the member's Ready transition in the pool.
func TestKnobsInTakeoverPatch(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tmplWith := func(ann map[string]string) *extv1beta1.SandboxTemplate {
		return &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python", Annotations: ann}}
	}
	poolWith := func(ann map[string]string) *extv1beta1.SandboxWarmPool {
		return &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: ann}}
	}
	tests := map[string]struct {
		pool   map[string]string
		tmpl   map[string]string
		member map[string]string
		want   map[string]any // the patch's annotations
	}{
		"none anywhere": {
			want: nil,
		},
		"template only": {
			tmpl: map[string]string{wakeKey: "true", idleKey: "15m"},
			want: map[string]any{wakeKey: "true", idleKey: "15m", lastKey: "2026-01-02T03:04:05Z"},
		},
		"pool wins per key": {
			pool: map[string]string{idleKey: "5m"},
			tmpl: map[string]string{wakeKey: "true", idleKey: "15m"},
			want: map[string]any{wakeKey: "true", idleKey: "5m", lastKey: "2026-01-02T03:04:05Z"},
		},
		"wake alone sets no activity": {
			pool: map[string]string{wakeKey: "true"},
			want: map[string]any{wakeKey: "true"},
		},
		"member already right": {
			pool:   map[string]string{wakeKey: "true"},
			member: map[string]string{wakeKey: "true"},
			want:   nil,
		},
		"member's stray knobs removed": {
			member: map[string]string{wakeKey: "true", idleKey: "1m"},
			want:   map[string]any{wakeKey: nil, idleKey: nil},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "pool-x", ResourceVersion: "7", Annotations: tc.member}}
			b, err := takeoverPatch(claimWith(nil, nil), poolWith(tc.pool), tmplWith(tc.tmpl), sb, now, "", "")
			if err != nil {
				t.Fatal(err)
			}
			var patch struct {
				Metadata struct {
					Annotations map[string]any `json:"annotations"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(b, &patch); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, patch.Metadata.Annotations); diff != "" {
				t.Errorf("takeover annotations (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestKnobsInColdCreate(t *testing.T) {
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Name: "python",
		Annotations: map[string]string{wakeKey: "true", idleKey: "15m", "other": "x"}}}
	pool := &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Name: "p",
		Annotations: map[string]string{idleKey: "1h"}}}
	sb, err := buildCold(claimWith(nil, nil), pool, tmpl, sandboxpolicy.SecureDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		agentsv1beta1.SandboxTemplateRefAnnotation: "python",
		wakeKey: "true",
		idleKey: "1h",
	}
	if diff := cmp.Diff(want, sb.Annotations); diff != "" {
		t.Errorf("cold Sandbox annotations (-want,+got):\n%s", diff)
	}
}
