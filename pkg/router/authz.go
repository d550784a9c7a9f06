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
	"context"
	"errors"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Authorizer decides whether a request may reach the sandbox
// namespace/name. It runs after header validation and before resolution.
// nil allows; an error wrapping ErrUnauthenticated answers 401, one
// wrapping ErrForbidden 403, one wrapping ErrUnavailable 503 (with
// Retry-After), and any other error 500. The detail of a denial is logged,
// never sent: clients only see "unauthenticated" or "forbidden".
type Authorizer interface {
	Authorize(ctx context.Context, r *http.Request, namespace, name string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, r *http.Request, namespace, name string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, r *http.Request, namespace, name string) error {
	return f(ctx, r, namespace, name)
}

// ConstrainedAuthorizer is an Authorizer whose grant can depend on a fact
// only known once the request is resolved, such as the UID of the Sandbox
// a scoped token was minted for. The router calls AuthorizeConstrained
// instead of Authorize and enforces the returned Constraint after
// resolution (403 when it does not hold).
type ConstrainedAuthorizer interface {
	Authorizer
	AuthorizeConstrained(ctx context.Context, r *http.Request, namespace, name string) (Constraint, error)
}

// ResumeAuthorizer is an Authorizer that can also tell whether the caller
// may resume the suspended Sandbox namespace/name (--wake-authz=rbac). It
// runs only after Authorize allowed the request. Errors are those of
// Authorize: ErrUnauthenticated and ErrForbidden refuse the wake (409),
// ErrUnavailable answers 503.
type ResumeAuthorizer interface {
	Authorizer
	AuthorizeResume(ctx context.Context, r *http.Request, namespace, name string) error
}

// Constraint is what a grant requires of the resolved sandbox; the zero
// value requires nothing.
type Constraint struct {
	// SandboxUID, when set, must be the UID of the Sandbox the request
	// resolves to. A request that cannot be resolved to a Sandbox object
	// (the DNS fallback) does not satisfy it.
	SandboxUID types.UID
}

// authorize runs a, constrained when it can be.
func authorize(ctx context.Context, a Authorizer, r *http.Request, namespace, name string) (Constraint, error) {
	if ca, ok := a.(ConstrainedAuthorizer); ok {
		return ca.AuthorizeConstrained(ctx, r, namespace, name)
	}
	return Constraint{}, a.Authorize(ctx, r, namespace, name)
}

// Sentinel verdicts; wrap them with context for the logs.
var (
	ErrUnauthenticated = errors.New(msgUnauthenticated)
	ErrForbidden       = errors.New(msgForbidden)
	// ErrUnavailable says no verdict can be reached right now (the review
	// budget is spent, the API server throttles): the client may retry.
	// It is never cached.
	ErrUnavailable = errors.New("authorization is temporarily unavailable")
)

// msgAuthzUnavailable is the 503 detail of ErrUnavailable, a sentence
// for the client rather than a Go error string.
const msgAuthzUnavailable = "Authorization is temporarily unavailable; retry later."

// Authorization modes, the values of --authz-mode.
const (
	AuthzModeAllowAll            = "allow-all"
	AuthzModeTokenReview         = "tokenreview"
	AuthzModeScopedToken         = "scoped-token"
	AuthzModeSubjectAccessReview = "subjectaccessreview"
)

// AllowAll is the reference default: every request passes, and the Pod-IP
// checks are the only guard. Use it only behind something that
// authenticates.
func AllowAll() Authorizer {
	return AuthorizerFunc(func(context.Context, *http.Request, string, string) error { return nil })
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header: the scheme matches case-insensitively, the token is trimmed and
// must not be empty.
func BearerToken(r *http.Request) (string, bool) {
	const prefix = "bearer "
	h := r.Header.Get(headerAuthorization)
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}
