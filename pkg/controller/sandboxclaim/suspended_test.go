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
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func TestSuspendedMessage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        string
	}{{
		name: "idle, wake on",
		annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "15m", agentsv1beta1.WakeOnRequestAnnotation: "true",
			agentsv1beta1.IdleSuspendedAtAnnotation: "2026-11-29T12:00:00Z"},
		want: "Sandbox was suspended after 15m0s without requests; the next request through the router resumes it",
	}, {
		name:        "idle, wake off",
		annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "15m", agentsv1beta1.IdleSuspendedAtAnnotation: "2026-11-29T12:00:00Z"},
		want:        "Sandbox was suspended after 15m0s without requests; set spec.operatingMode to Running on Sandbox sb to resume it",
	}, {
		name: "by hand",
		want: "Sandbox is suspended (spec.operatingMode: Suspended); set spec.operatingMode to Running on Sandbox sb to resume it",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "sb", Annotations: tc.annotations}}
			if got := suspendedMessage(sb); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
