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
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TokenReview defaults (§1.6).
const (
	DefaultTokenReviewTTL       = 30 * time.Second
	DefaultTokenReviewCacheSize = 2048
	tokenReviewCallTimeout      = 3 * time.Second
)

// TokenReviewOptions configures the tokenreview and subjectaccessreview
// authorizers.
type TokenReviewOptions struct {
	// Client submits the reviews; required.
	Client kubernetes.Interface
	// Audiences are sent as spec.audiences; empty means the API server's.
	Audiences []string
	// TTL is how long a verdict is cached; 0 means DefaultTokenReviewTTL.
	// API errors are cached for max(TTL/3, 1s).
	TTL time.Duration
	// CacheSize bounds each verdict cache; 0 means DefaultTokenReviewCacheSize.
	CacheSize int
	// RequireToken makes tokenless requests 401 in tokenreview mode;
	// otherwise they pass. subjectaccessreview always requires a token.
	RequireToken bool
	// Timeout bounds each API call; 0 means 3s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now. A test seam.
	Now func() time.Time
}

func (o *TokenReviewOptions) defaults() error {
	if o.Client == nil {
		return errors.New("a Kubernetes client is required")
	}
	if o.TTL < 0 || o.CacheSize < 0 || o.Timeout < 0 {
		return errors.New("TTL, cache size and timeout must not be negative")
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

// reviewResult is a cached TokenReview outcome: a user, a denial
// (user == nil, err == nil), or an API error.
type reviewResult struct {
	user *authenticationv1.UserInfo
	err  error
}

type tokenReviewer struct {
	opts  TokenReviewOptions
	cache *ttlLRU[tokenKey, reviewResult]
}

func newTokenReviewer(o TokenReviewOptions) (*tokenReviewer, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("tokenreview authorizer: %w", err)
	}
	return &tokenReviewer{opts: o, cache: newTTLLRU[tokenKey, reviewResult](o.CacheSize)}, nil
}

// authenticate returns the token's user, ErrUnauthenticated, or an API
// error, from the cache when fresh.
func (t *tokenReviewer) authenticate(ctx context.Context, key tokenKey, token string) (*authenticationv1.UserInfo, error) {
	now := t.opts.Now()
	res, ok := t.cache.get(key, now)
	if !ok {
		res = t.review(ctx, token)
		ttl := t.opts.TTL
		if res.err != nil {
			ttl = t.opts.errorTTL()
		}
		t.cache.add(key, res, now.Add(ttl))
	}
	if res.err != nil {
		return nil, res.err
	}
	if res.user == nil {
		return nil, fmt.Errorf("%w: token not authenticated", ErrUnauthenticated)
	}
	return res.user, nil
}

func (t *tokenReviewer) review(ctx context.Context, token string) reviewResult {
	// Detached from the request: the verdict is cached and shared, so a
	// client that hangs up must not poison it with a cancellation error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.Timeout)
	defer cancel()
	tr, err := t.opts.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: t.opts.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return reviewResult{err: fmt.Errorf("creating TokenReview: %w", err)}
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

// NewTokenReviewAuthorizer authenticates the bearer token with a
// TokenReview and lets any authenticated principal reach any sandbox.
// Tokenless requests pass unless o.RequireToken.
func NewTokenReviewAuthorizer(o TokenReviewOptions) (Authorizer, error) {
	t, err := newTokenReviewer(o)
	if err != nil {
		return nil, err
	}
	return AuthorizerFunc(func(ctx context.Context, r *http.Request, _, _ string) error {
		token, ok := BearerToken(r)
		if !ok {
			if t.opts.RequireToken {
				return fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
			}
			return nil
		}
		_, err := t.authenticate(ctx, sha256.Sum256([]byte(token)), token)
		return err
	}), nil
}
