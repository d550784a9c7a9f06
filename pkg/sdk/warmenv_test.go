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

package sdk

import (
	"net"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// In direct mode no router sets a warm claim's X-Sandbox-Env, so the SDK
// sends it from the Sandbox's env annotation, to the runtime port it names
// only; in router mode it never does (the router sets it and strips any
// client copy).
func TestWarmEnvHeader(t *testing.T) {
	env := []warmenv.Var{{Name: "TOKEN", Value: "t0k"}}
	sandboxWith := func(port int) *agentsv1beta1.Sandbox {
		a, err := warmenv.Marshal(warmenv.Spec{Port: int32(port), Env: env})
		if err != nil {
			t.Fatal(err)
		}
		return &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "warm-xyz12", Annotations: map[string]string{agentsv1beta1.EnvAnnotation: a}}}
	}
	rec := &recorder{reply: jsonReply(`{"stdout":"","stderr":"","exit_code":0}`)}
	srv := newLoopbackServer(t, rec)
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	for name, tc := range map[string]struct {
		sb   func() *Sandbox
		want []string
	}{
		"direct, the runtime port": {sb: func() *Sandbox {
			sb := directSandbox(t, srv)
			ip := sb.podIP
			sb.setIdentity(sandboxWith(port), []string{ip})
			return sb
		}, want: []string{warmenv.EncodeHeader(env)}},
		"direct, another port": {sb: func() *Sandbox {
			sb := directSandbox(t, srv)
			ip := sb.podIP
			sb.setIdentity(sandboxWith(port+1), []string{ip})
			return sb
		}},
		"router mode": {sb: func() *Sandbox {
			sb := testSandbox(t, WithRouterURL(srv.URL), WithServerPort(port))
			sb.setIdentity(sandboxWith(port), nil)
			return sb
		}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.sb().Run(t.Context(), "env"); err != nil {
				t.Fatal(err)
			}
			got := rec.last().Header.Values(warmenv.Header)
			if len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
				t.Errorf("X-Sandbox-Env %q, want %q", got, tc.want)
			}
		})
	}
}
