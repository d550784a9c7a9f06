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
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/flowcontrol"
)

// TokenReview defaults (§1.6).
const (
	DefaultTokenReviewTTL       = 30 * time.Second
	DefaultTokenReviewCacheSize = 2048
	tokenReviewCallTimeout      = 3 * time.Second
	// DefaultReviewQPS and DefaultReviewBurst bound the TokenReview and
	// SubjectAccessReview calls one authorizer makes. Known tokens are
	// answered from the cache, so this budget is only spent on tokens the
	// router has not seen within the TTL.
	DefaultReviewQPS   = 20
	DefaultReviewBurst = 40
)

// ShippedAudience is the token audience the shipped manifests require
// (--authz-tokenreview-audiences): callers present tokens minted for the
// router alone, which the API server itself does not accept.
const ShippedAudience = "agent-sandbox-router"

// Scopes of tokenreview mode, the values of --authz-tokenreview-scope.
const (
	// TokenReviewScopeNamespace lets a ServiceAccount reach the sandboxes
	// of its own namespace only, and refuses every other principal.
	TokenReviewScopeNamespace = "namespace"
	// TokenReviewScopeCluster lets any authenticated principal reach any
	// sandbox in any namespace: the reference behaviour.
	TokenReviewScopeCluster = "cluster"
)

// TokenReviewOptions configures the tokenreview and subjectaccessreview
// authorizers.
type TokenReviewOptions struct {
	// Client submits the reviews; required. Give it no client-side rate
	// limiter of its own (rest.Config.QPS < 0): the authorizer's limiter
	// refuses at once instead of queueing callers behind a flood.
	Client kubernetes.Interface
	// Audiences are sent as spec.audiences; empty means the API server's.
	Audiences []string
	// TTL is how long a verdict is cached; 0 means DefaultTokenReviewTTL.
	// API errors are cached for max(TTL/3, 1s); throttling is not cached.
	TTL time.Duration
	// CacheSize bounds each verdict cache; 0 means DefaultTokenReviewCacheSize.
	// Grants and refusals are cached apart, each this size, so refusals
	// (a flood of junk tokens) never evict a grant.
	CacheSize int
	// AllowMissingToken lets tokenless requests through in tokenreview
	// mode, the reference default; otherwise they are 401.
	// subjectaccessreview always requires a token.
	AllowMissingToken bool
	// AllowOpaqueTokens submits tokens that are not JWTs. Without it a
	// token must be a JWS compact serialization (three base64url segments,
	// JSON header and payload) whose exp, if present, is in the future;
	// anything else is refused without an API call. Set it for clusters
	// whose static-token or webhook authenticators accept opaque tokens.
	AllowOpaqueTokens bool
	// Scope is TokenReviewScopeNamespace (also when empty) or
	// TokenReviewScopeCluster; tokenreview mode only.
	Scope string
	// ReviewQPS and ReviewBurst bound the review calls (0 means the
	// defaults). A call over budget is not made: the request gets 503 with
	// Retry-After, and nothing is cached.
	ReviewQPS   float32
	ReviewBurst int
	// Limiter replaces the ReviewQPS/ReviewBurst limiter; a test seam.
	Limiter flowcontrol.RateLimiter
	// Timeout bounds each API call; 0 means 3s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now. A test seam.
	Now func() time.Time
}

func (o *TokenReviewOptions) defaults() error {
	if o.Client == nil {
		return errors.New("a Kubernetes client is required")
	}
	if o.TTL < 0 || o.CacheSize < 0 || o.Timeout < 0 || o.ReviewQPS < 0 || o.ReviewBurst < 0 {
		return errors.New("TTL, cache size, timeout and review QPS/burst must not be negative")
	}
	switch o.Scope {
	case "":
		o.Scope = TokenReviewScopeNamespace
	case TokenReviewScopeNamespace, TokenReviewScopeCluster:
	default:
		return fmt.Errorf("unknown scope %q (want %s or %s)", o.Scope, TokenReviewScopeNamespace, TokenReviewScopeCluster)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTokenReviewTTL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultTokenReviewCacheSize
	}
	if o.Timeout == 0 {
		o.Timeout = tokenReviewCallTimeout
	}
	if o.ReviewQPS == 0 {
		o.ReviewQPS = DefaultReviewQPS
	}
	if o.ReviewBurst == 0 {
		o.ReviewBurst = DefaultReviewBurst
	}
	if o.Limiter == nil {
		o.Limiter = flowcontrol.NewTokenBucketRateLimiter(o.ReviewQPS, o.ReviewBurst)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// errorTTL is how long an API failure is remembered: long enough not to
// hammer a struggling API server, short enough to recover quickly.
func (o *TokenReviewOptions) errorTTL() time.Duration {
	return max(o.TTL/3, time.Second)
}

// tokenKey is SHA-256 of a bearer token: raw tokens are never stored.
type tokenKey [sha256.Size]byte

// reviewResult is a TokenReview outcome: a user, a denial (user == nil,
// err == nil), or an API error.
type reviewResult struct {
	user *authenticationv1.UserInfo
	err  error
}

type tokenReviewer struct {
	opts TokenReviewOptions
	// users holds grants, refused holds denials and API errors: apart, so
	// that junk can only ever evict junk.
	users   expiringLRU[tokenKey, *authenticationv1.UserInfo]
	refused expiringLRU[tokenKey, reviewResult]
	flights flightGroup[tokenKey, reviewResult]
}

func newTokenReviewer(o TokenReviewOptions) (*tokenReviewer, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("tokenreview authorizer: %w", err)
	}
	return &tokenReviewer{
		opts:    o,
		users:   newExpiringLRU[tokenKey, *authenticationv1.UserInfo](o.CacheSize, o.Now),
		refused: newExpiringLRU[tokenKey, reviewResult](o.CacheSize, o.Now),
	}, nil
}

// authenticate returns the token's user, ErrUnauthenticated, ErrUnavailable
// or an API error, from the caches when fresh. Concurrent callers with the
// same unknown token share one review.
func (t *tokenReviewer) authenticate(ctx context.Context, token string) (*authenticationv1.UserInfo, error) {
	exp, err := t.precheck(token, t.opts.Now())
	if err != nil {
		return nil, err
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	if user, ok := t.users.get(key); ok {
		return user, nil
	}
	res, ok := t.refused.get(key)
	if !ok {
		res, err = t.flights.do(ctx, key, func() reviewResult { return t.reviewAndCache(ctx, key, token, exp) })
		if err != nil {
			return nil, fmt.Errorf("waiting for a TokenReview: %w", err)
		}
	}
	if res.err != nil {
		return nil, res.err
	}
	if res.user == nil {
		return nil, fmt.Errorf("%w: token not authenticated", ErrUnauthenticated)
	}
	return res.user, nil
}

// precheck is what a token must pass before any cache or API call: the JWT
// shape and expiry, unless opaque tokens are allowed. It runs before cache
// lookups too, so an expired token is refused even while a grant for it is
// cached.
func (t *tokenReviewer) precheck(token string, now time.Time) (time.Time, error) {
	if t.opts.AllowOpaqueTokens {
		return time.Time{}, nil
	}
	return checkJWTShape(token, now)
}

// reviewAndCache runs one TokenReview and caches what it learnt: a grant
// until the TTL or the token's own expiry, whichever is first; a denial
// for the TTL; an API error briefly; throttling not at all.
func (t *tokenReviewer) reviewAndCache(ctx context.Context, key tokenKey, token string, exp time.Time) reviewResult {
	// A flight that finished between our cache miss and do() has cached
	// its verdict; use it rather than review again.
	if user, ok := t.users.get(key); ok {
		return reviewResult{user: user}
	}
	if res, ok := t.refused.get(key); ok {
		return res
	}
	res := t.review(ctx, token)
	switch {
	case errors.Is(res.err, ErrUnavailable):
	case res.err != nil:
		t.refused.add(key, res, t.opts.errorTTL())
	case res.user == nil:
		t.refused.add(key, res, t.opts.TTL)
	default:
		ttl := t.opts.TTL
		if !exp.IsZero() {
			ttl = min(ttl, exp.Sub(t.opts.Now()))
		}
		t.users.add(key, res.user, ttl)
	}
	return res
}

func (t *tokenReviewer) review(ctx context.Context, token string) reviewResult {
	if !t.opts.Limiter.TryAccept() {
		return reviewResult{err: fmt.Errorf("%w: TokenReview budget spent", ErrUnavailable)}
	}
	// Detached from the request: the verdict is cached and shared, so a
	// client that hangs up must not poison it with a cancellation error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.Timeout)
	defer cancel()
	tr, err := t.opts.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: t.opts.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return reviewResult{err: apiError("creating TokenReview", err)}
	}
	if !tr.Status.Authenticated {
		return reviewResult{}
	}
	if len(t.opts.Audiences) > 0 && !intersects(tr.Status.Audiences, t.opts.Audiences) {
		// The API server returns the audiences the token is valid for; an
		// authenticator that ignores spec.audiences must not slip through.
		return reviewResult{}
	}
	user := tr.Status.User
	return reviewResult{user: &user}
}

// apiError marks throttling and timeouts as ErrUnavailable: they say
// nothing about the token, so they must be neither cached nor a 500.
func apiError(what string, err error) error {
	if apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// serviceAccountNamespace returns the namespace of a ServiceAccount user
// name, system:serviceaccount:<namespace>:<name>.
func serviceAccountNamespace(username string) (string, bool) {
	rest, ok := strings.CutPrefix(username, "system:serviceaccount:")
	if !ok {
		return "", false
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", false
	}
	return ns, true
}

// NewTokenReviewAuthorizer authenticates the bearer token with a
// TokenReview. With the default scope a ServiceAccount reaches the
// sandboxes of its own namespace and nothing else, and any other principal
// is refused (403); TokenReviewScopeCluster lets any authenticated
// principal reach any sandbox. Tokenless requests are 401 unless
// o.AllowMissingToken. It is a ResumeAuthorizer: the user the token names
// is asked about update on the Sandbox with a SubjectAccessReview.
func NewTokenReviewAuthorizer(o TokenReviewOptions) (Authorizer, error) {
	t, err := newTokenReviewer(o)
	if err != nil {
		return nil, err
	}
	return &tokenReviewAuthorizer{t: t, resume: newAccessReviewer(t)}, nil
}

type tokenReviewAuthorizer struct {
	t      *tokenReviewer
	resume *accessReviewer
}

func (a *tokenReviewAuthorizer) Authorize(ctx context.Context, r *http.Request, namespace, _ string) error {
	t := a.t
	token, ok := BearerToken(r)
	if !ok {
		if t.opts.AllowMissingToken {
			return nil
		}
		return fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	user, err := t.authenticate(ctx, token)
	if err != nil || t.opts.Scope == TokenReviewScopeCluster {
		return err
	}
	saNamespace, ok := serviceAccountNamespace(user.Username)
	if !ok {
		return fmt.Errorf("%w: %q is not a ServiceAccount; tokenreview scope %q admits ServiceAccounts only", ErrForbidden, user.Username, t.opts.Scope)
	}
	if saNamespace != namespace {
		return fmt.Errorf("%w: ServiceAccount %q reaches namespace %s only", ErrForbidden, user.Username, saNamespace)
	}
	return nil
}

// AuthorizeResume implements ResumeAuthorizer; a tokenless request (let
// through by AllowMissingToken) has no identity to ask about and is
// refused.
func (a *tokenReviewAuthorizer) AuthorizeResume(ctx context.Context, r *http.Request, namespace, name string) error {
	return a.resume.check(ctx, r, resumeAccess, namespace, name)
}
