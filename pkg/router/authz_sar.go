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
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// The RBAC attributes a caller needs: get on sandboxes/proxy in the
// sandbox's namespace, optionally restricted by resourceNames.
const (
	ProxySubresource = "proxy"
	ProxyVerb        = "get"
)

// ResumeVerb is what a caller needs on sandboxes (no subresource) for the
// router to resume a suspended Sandbox for them under --wake-authz=rbac:
// the right to set spec.operatingMode by hand, so waking escalates nothing.
const ResumeVerb = "update"

// access is the RBAC attribute pair a SubjectAccessReview asks about.
type access struct{ verb, subresource string }

var (
	proxyAccess  = access{verb: ProxyVerb, subresource: ProxySubresource}
	resumeAccess = access{verb: ResumeVerb}
)

type sarKey struct {
	token           tokenKey
	access          access
	namespace, name string
}

// sarResult is a cached SubjectAccessReview outcome: allowed, denied, or
// an API error.
type sarResult struct {
	allowed bool
	err     error
}

// accessReviewer asks, and caches, whether a token's user has an access
// on one Sandbox. The verb is in the cache key, so proxy and resume
// verdicts share the caches without ever answering for each other.
type accessReviewer struct {
	tokens *tokenReviewer
	// allowed and denied are apart, like the token caches: a caller
	// probing many names can only evict its own denials.
	allowed expiringLRU[sarKey, struct{}]
	denied  expiringLRU[sarKey, sarResult]
	flights flightGroup[sarKey, sarResult]
}

func newAccessReviewer(t *tokenReviewer) *accessReviewer {
	return &accessReviewer{
		tokens:  t,
		allowed: newExpiringLRU[sarKey, struct{}](t.opts.CacheSize, t.opts.Now),
		denied:  newExpiringLRU[sarKey, sarResult](t.opts.CacheSize, t.opts.Now),
	}
}

type sarAuthorizer struct {
	*accessReviewer
}

// NewSubjectAccessReviewAuthorizer authenticates the bearer token with a
// TokenReview (a token is always required) and then asks a
// SubjectAccessReview whether that user may get sandboxes/proxy on the
// requested Sandbox. Ordinary RBAC thus decides who reaches which sandbox:
// a Role in one namespace never opens another. Verdicts are cached per
// (token, namespace, name) like TokenReview results, and both reviews
// share one rate limiter; o.AllowMissingToken and o.Scope are ignored.
// It is a ResumeAuthorizer.
func NewSubjectAccessReviewAuthorizer(o TokenReviewOptions) (Authorizer, error) {
	o.AllowMissingToken = false
	o.Scope = ""
	t, err := newTokenReviewer(o)
	if err != nil {
		return nil, err
	}
	return &sarAuthorizer{newAccessReviewer(t)}, nil
}

func (a *sarAuthorizer) Authorize(ctx context.Context, r *http.Request, namespace, name string) error {
	return a.check(ctx, r, proxyAccess, namespace, name)
}

// AuthorizeResume implements ResumeAuthorizer.
func (a *sarAuthorizer) AuthorizeResume(ctx context.Context, r *http.Request, namespace, name string) error {
	return a.check(ctx, r, resumeAccess, namespace, name)
}

// check authenticates the request's bearer token and reviews acc on the
// Sandbox namespace/name for its user.
func (a *accessReviewer) check(ctx context.Context, r *http.Request, acc access, namespace, name string) error {
	token, ok := BearerToken(r)
	if !ok {
		return fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	if _, err := a.tokens.precheck(token, a.tokens.opts.Now()); err != nil {
		return err
	}
	key := sarKey{token: sha256.Sum256([]byte(token)), access: acc, namespace: namespace, name: name}
	if _, ok := a.allowed.get(key); ok {
		return nil
	}
	res, ok := a.denied.get(key)
	if !ok {
		// Authentication has its own caches, and its own refusals.
		user, err := a.tokens.authenticate(ctx, token)
		if err != nil {
			return err
		}
		res, err = a.flights.do(ctx, key, func() sarResult { return a.reviewAndCache(ctx, key, user) })
		if err != nil {
			return fmt.Errorf("waiting for a SubjectAccessReview: %w", err)
		}
	}
	switch {
	case res.err != nil:
		return res.err
	case !res.allowed:
		resource := agentsv1beta1.SandboxesResource.Resource
		if acc.subresource != "" {
			resource += "/" + acc.subresource
		}
		return fmt.Errorf("%w: no %s on %s in namespace %s", ErrForbidden, acc.verb, resource, namespace)
	}
	return nil
}

func (a *accessReviewer) reviewAndCache(ctx context.Context, key sarKey, user *authenticationv1.UserInfo) sarResult {
	o := &a.tokens.opts
	if _, ok := a.allowed.get(key); ok {
		return sarResult{allowed: true}
	}
	if res, ok := a.denied.get(key); ok {
		return res
	}
	res := a.review(ctx, user, key)
	switch {
	case errors.Is(res.err, ErrUnavailable):
	case res.err != nil:
		a.denied.add(key, res, o.errorTTL())
	case !res.allowed:
		a.denied.add(key, res, o.TTL)
	default:
		a.allowed.add(key, struct{}{}, o.TTL)
	}
	return res
}

func (a *accessReviewer) review(ctx context.Context, user *authenticationv1.UserInfo, key sarKey) sarResult {
	if !a.tokens.opts.Limiter.TryAccept() {
		return sarResult{err: fmt.Errorf("%w: SubjectAccessReview budget spent", ErrUnavailable)}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.tokens.opts.Timeout)
	defer cancel()
	var extra map[string]authorizationv1.ExtraValue
	if len(user.Extra) > 0 {
		extra = make(map[string]authorizationv1.ExtraValue, len(user.Extra))
		for k, v := range user.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	sar, err := a.tokens.opts.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user.Username,
			UID:    user.UID,
			Groups: user.Groups,
			Extra:  extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group:       agentsv1beta1.SandboxesResource.Group,
				Resource:    agentsv1beta1.SandboxesResource.Resource,
				Subresource: key.access.subresource,
				Verb:        key.access.verb,
				Namespace:   key.namespace,
				Name:        key.name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return sarResult{err: apiError("creating SubjectAccessReview", err)}
	}
	return sarResult{allowed: sar.Status.Allowed && !sar.Status.Denied}
}
