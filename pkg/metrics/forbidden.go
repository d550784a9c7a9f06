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
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Causes of a 403 from the API server, as agent_sandbox_api_forbidden_requests_total
// tells them apart: only "authorization" means the controller's RBAC lacks
// a verb; a namespace being deleted or an admission plugin (quota, pod
// security) also answer 403 in normal operation.
const (
	ForbiddenCauseAuthorization        = "authorization"
	ForbiddenCauseNamespaceTerminating = "namespace_terminating"
	ForbiddenCauseAdmission            = "admission"
)

// ForbiddenRequests counts the API requests refused with 403, by cause,
// verb and resource, so an operator (and the e2e suite) sees exactly which
// permission a release's RBAC is missing.
type ForbiddenRequests struct {
	total *prometheus.CounterVec
}

// NewForbiddenRequests creates the counter and registers it on reg.
func NewForbiddenRequests(reg prometheus.Registerer) *ForbiddenRequests {
	f := &ForbiddenRequests{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agent_sandbox_api_forbidden_requests_total",
		Help: "API requests the API server refused with 403, by cause (authorization, namespace_terminating, admission), verb and resource.",
	}, []string{"cause", "verb", "resource"})}
	reg.MustRegister(f.total)
	return f
}

// Wrap is a rest.Config WrapTransport: it passes every request through and
// looks only at 403 responses, whose small Status body it reads and puts
// back.
func (f *ForbiddenRequests) Wrap(rt http.RoundTripper) http.RoundTripper {
	return forbiddenTransport{next: rt, total: f.total}
}

type forbiddenTransport struct {
	next  http.RoundTripper
	total *prometheus.CounterVec
}

// maxStatusBody bounds what is read of a 403 body; a Status is far smaller.
const maxStatusBody = 64 << 10

func (t forbiddenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		return resp, err
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if readErr != nil {
		return resp, nil
	}
	t.total.WithLabelValues(forbiddenCause(body), requestVerb(req), apiResource(req.URL.Path)).Inc()
	return resp, nil
}

// forbiddenCause classifies a 403 by its Status message. It matches bytes,
// not decoded JSON, because client-go asks for protobuf where it can and a
// protobuf Status carries its strings verbatim. The authorizer's refusal is
// the one saying the user "cannot <verb> resource".
func forbiddenCause(body []byte) string {
	switch {
	case bytes.Contains(body, []byte("NamespaceTerminating")) || bytes.Contains(body, []byte("because it is being terminated")):
		return ForbiddenCauseNamespaceTerminating
	case bytes.Contains(body, []byte(" cannot ")) && bytes.Contains(body, []byte(" resource ")):
		return ForbiddenCauseAuthorization
	default:
		return ForbiddenCauseAdmission
	}
}

// requestVerb maps the HTTP method (and watch/list) to the RBAC verb.
func requestVerb(req *http.Request) string {
	switch req.Method {
	case http.MethodGet:
		if req.URL.Query().Get("watch") == "true" {
			return "watch"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return strings.ToLower(req.Method)
}

// apiResource turns an API path into "resource[.group][/subresource]":
// /api/v1/namespaces/ns/pods/p -> pods, /apis/agents.x-k8s.io/v1beta1/
// namespaces/ns/sandboxes/s/status -> sandboxes.agents.x-k8s.io/status.
// The set is closed (our resources), so it is safe as a label.
func apiResource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return "other"
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		if len(parts) == 2 {
			return "namespaces"
		}
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return "other"
	}
	resource := parts[0]
	if group != "" {
		resource += "." + group
	}
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	return resource
}
