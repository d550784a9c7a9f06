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

package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAPIResource(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/ns/pods/p": "pods",
		"/api/v1/namespaces/ns/pods":   "pods",
		"/api/v1/pods":                 "pods",
		"/api/v1/namespaces/ns":        "namespaces",
		"/apis/agents.x-k8s.io/v1beta1/namespaces/ns/sandboxes/s/status": "sandboxes.agents.x-k8s.io/status",
		"/apis/coordination.k8s.io/v1/namespaces/ns/leases/l":            "leases.coordination.k8s.io",
		"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x":      "customresourcedefinitions.apiextensions.k8s.io",
		"/healthz": "other",
	} {
		if got := apiResource(path); got != want {
			t.Errorf("apiResource(%q) = %q, want %q", path, got, want)
		}
	}
}

// A protobuf Status (what client-go gets for core types) is classified like
// a JSON one.
func TestForbiddenCauseProtobuf(t *testing.T) {
	status := &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Code: 403,
		Message: `pods is forbidden: User "u" cannot create resource "pods" in API group "" in the namespace "a"`}
	b, err := status.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := forbiddenCause(append([]byte("k8s\x00"), b...)); got != ForbiddenCauseAuthorization {
		t.Errorf("protobuf RBAC refusal classified %q", got)
	}
	status.Message = `pods "p" is forbidden: unable to create new content in namespace b because it is being terminated`
	if b, err = status.Marshal(); err != nil {
		t.Fatal(err)
	}
	if got := forbiddenCause(b); got != ForbiddenCauseNamespaceTerminating {
		t.Errorf("protobuf namespace-terminating refusal classified %q", got)
	}
}

// The transport counts each 403 once under the right cause, leaves other
// responses alone, and hands the caller the full body.
func TestForbiddenTransport(t *testing.T) {
	bodies := map[string]string{
		"/api/v1/namespaces/a/pods": `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"system:serviceaccount:x:y\" cannot create resource \"pods\" in API group \"\" in the namespace \"a\"","reason":"Forbidden","code":403}`,
		"/api/v1/namespaces/b/pods": `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"p\" is forbidden: unable to create new content in namespace b because it is being terminated","reason":"Forbidden","details":{"name":"p","kind":"pods","causes":[{"reason":"NamespaceTerminating","message":"namespace b is being terminated","field":"metadata.namespace"}]},"code":403}`,
		"/api/v1/namespaces/c/pods": `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"p\" is forbidden: exceeded quota: q","reason":"Forbidden","code":403}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			_, _ = w.Write([]byte(`{}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()

	reg := prometheus.NewRegistry()
	f := NewForbiddenRequests(reg)
	client := &http.Client{Transport: f.Wrap(http.DefaultTransport)}
	for _, path := range []string{"/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods", "/api/v1/namespaces/c/pods", "/api/v1/namespaces/d/pods"} {
		resp, err := client.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if want, ok := bodies[path]; ok && string(got) != want {
			t.Errorf("%s: caller got body %q, want the server's", path, got)
		}
	}
	counts := counters(t, reg, "agent_sandbox_api_forbidden_requests_total")
	want := map[string]float64{
		"agent_sandbox_api_forbidden_requests_total{cause=authorization,resource=pods,verb=create}":         1,
		"agent_sandbox_api_forbidden_requests_total{cause=namespace_terminating,resource=pods,verb=create}": 1,
		"agent_sandbox_api_forbidden_requests_total{cause=admission,resource=pods,verb=create}":             1,
	}
	if len(counts) != len(want) {
		t.Errorf("series %v, want %v", counts, want)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
}
