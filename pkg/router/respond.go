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
	"encoding/json"
	"net/http"
)

// Error details that are not header validation messages.
const (
	msgNotFound           = "Sandbox not found: "
	msgPodIPMismatch      = "X-Sandbox-Pod-IP does not match the sandbox's pod."
	msgBadGateway         = "Could not connect to the backend sandbox: "
	msgGatewayTimeout     = "Timed out waiting for the backend sandbox: "
	msgBodyTooLarge       = "Request body too large."
	msgInternal           = "An internal error occurred in the proxy."
	msgOverloaded         = "Too many requests in flight; retry later."
	msgUnauthenticated    = "unauthenticated"
	msgForbidden          = "forbidden"
	contentTypeJSON       = "application/json"
	headerContentType     = "Content-Type"
	headerAuthorization   = "Authorization"
	headerWWWAuthenticate = "WWW-Authenticate"
)

type detailBody struct {
	Detail string `json:"detail"`
}

// writeDetail writes the router's only error shape, {"detail": "..."}.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	body, _ := json.Marshal(detailBody{Detail: detail}) // a struct of one string always marshals
	h := w.Header()
	h.Set(headerContentType, contentTypeJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var healthzBody = []byte(`{"status":"ok"}`)

// writeHealthz answers /healthz: always 200, for kubelet and Gateway health
// checks alike.
func writeHealthz(w http.ResponseWriter) {
	w.Header().Set(headerContentType, contentTypeJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(healthzBody)
}
