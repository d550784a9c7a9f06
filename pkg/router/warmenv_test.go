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

package router

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// envRecorder is a backend that records the X-Sandbox-Env values of the
// last request it got.
type envRecorder struct {
	*backend
	mu   sync.Mutex
	seen []string
}

func newEnvRecorder(t *testing.T, ip string) *envRecorder {
	e := &envRecorder{}
	e.backend = newBackend(t, ip, func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = r.Header.Values(warmenv.Header)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	return e
}

func (e *envRecorder) last() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

// withEnvAnnotation gives sb the env annotation of a warm claim whose
// runtime listens on port.
func withEnvAnnotation(t *testing.T, sb *agentsv1beta1.Sandbox, port int, env ...warmenv.Var) *agentsv1beta1.Sandbox {
	t.Helper()
	a, err := warmenv.Marshal(warmenv.Spec{Port: int32(port), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Annotations == nil {
		sb.Annotations = map[string]string{}
	}
	sb.Annotations[agentsv1beta1.EnvAnnotation] = a
	return sb
}

// The router sets X-Sandbox-Env only from the cache entry it dials and
// only on the runtime port that entry's annotation names; a client's copy
// never reaches any sandbox, on any port, whether or not the router adds
// its own. Sandbox A has env; B (another Pod) has none; "app" is another
// port of A's Pod.
func TestRewriteSetsEnvOnlyFromTheDialledEntry(t *testing.T) {
	runtimeA := newEnvRecorder(t, "127.0.0.1")
	appA := newEnvRecorder(t, "127.0.0.1")
	runtimeB := newEnvRecorder(t, "127.0.0.2")
	envA := []warmenv.Var{{Name: "TOKEN", Value: "a-secret\nline"}, {Name: "TASK", Value: "1"}}
	podA, podB := sandboxPod("team", "sb-a", "127.0.0.1"), sandboxPod("team", "sb-b", "127.0.0.2")
	r, _, _ := newTestRouterObjs(t, nil, podA, podB,
		withEnvAnnotation(t, sandboxFor(podA), runtimeA.portNum(), envA...), sandboxFor(podB))
	front := frontend(t, r)
	forged := warmenv.EncodeHeader([]warmenv.Var{{Name: "TOKEN", Value: "evil"}})

	for name, tc := range map[string]struct {
		id     string
		be     *envRecorder
		client []string
		want   []string
	}{
		"A's runtime":                     {id: "sb-a", be: runtimeA, want: []string{warmenv.EncodeHeader(envA)}},
		"A's runtime, client injects":     {id: "sb-a", be: runtimeA, client: []string{forged}, want: []string{warmenv.EncodeHeader(envA)}},
		"A's runtime, client sends junk":  {id: "sb-a", be: runtimeA, client: []string{"TOKEN=evil", "x"}, want: []string{warmenv.EncodeHeader(envA)}},
		"A's other port":                  {id: "sb-a", be: appA},
		"A's other port, client injects":  {id: "sb-a", be: appA, client: []string{forged}},
		"B (no env), client injects":      {id: "sb-b", be: runtimeB, client: []string{forged}},
		"B (no env), client sends junk":   {id: "sb-b", be: runtimeB, client: []string{"TOKEN=evil"}},
		"B (no env), nothing from client": {id: "sb-b", be: runtimeB},
	} {
		t.Run(name, func(t *testing.T) {
			req := sandboxRequest(t, front, http.MethodPost, "/execute", "team", tc.id, tc.be.portNum())
			for _, v := range tc.client {
				req.Header.Add("x-sandbox-env", v) // any spelling
			}
			resp := do(t, req)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if diff := cmp.Diff(tc.want, tc.be.last()); diff != "" {
				t.Errorf("X-Sandbox-Env upstream (-want,+got):\n%s", diff)
			}
		})
	}
}

// An entry follows its Sandbox's annotation: a forged or malformed one
// gives no header, and the header is precomputed from the annotation.
func TestEntryEnvFromAnnotation(t *testing.T) {
	pod := sandboxPod("team", "sb", "127.0.0.1")
	env := []warmenv.Var{{Name: "A", Value: "1"}}
	for name, tc := range map[string]struct {
		annotation string
		wantPort   int
		wantHeader string
	}{
		"none":         {},
		"valid":        {annotation: `{"port":8888,"env":[{"name":"A","value":"1"}]}`, wantPort: 8888, wantHeader: warmenv.EncodeHeader(env)},
		"not JSON":     {annotation: `TOKEN=evil`},
		"port 0":       {annotation: `{"port":0,"env":[{"name":"A","value":"1"}]}`},
		"a bad name":   {annotation: `{"port":8888,"env":[{"name":"A=B","value":"1"}]}`},
		"over 8 KiB":   {annotation: fmt.Sprintf(`{"port":8888,"env":[{"name":"A","value":"%0*d"}]}`, warmenv.MaxAnnotationBytes, 0)},
		"another port": {annotation: `{"port":1,"env":[]}`, wantPort: 1, wantHeader: warmenv.EncodeHeader(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			sb := sandboxFor(pod)
			if tc.annotation != "" {
				sb.Annotations = map[string]string{agentsv1beta1.EnvAnnotation: tc.annotation}
			}
			slim, _ := slimSandbox(sb)
			e := entryFor(slim.(*agentsv1beta1.Sandbox), pod)
			if e == nil {
				t.Fatal("not routable")
			}
			if e.EnvPort != tc.wantPort || e.EnvHeader != tc.wantHeader {
				t.Errorf("port %d header %q, want %d %q", e.EnvPort, e.EnvHeader, tc.wantPort, tc.wantHeader)
			}
		})
	}
}
