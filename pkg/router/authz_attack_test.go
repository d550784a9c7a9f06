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
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/flowcontrol"
)

// fakeJWT has the shape of a JWT (header, claims, signature) and nothing
// else: only the fake API server decides whether it is valid.
func fakeJWT(sub string, exp int64) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"sub":%q}`, sub)
	if exp != 0 {
		claims = fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, exp)
	}
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature-"+sub))
}

func TestCheckJWTShape(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"RS256"}`))
	sig := enc([]byte("sig"))
	cases := map[string]struct {
		token string
		ok    bool
		exp   int64
	}{
		"sa token":          {fakeJWT("a", now.Unix()+60), true, now.Unix() + 60},
		"no exp":            {fakeJWT("a", 0), true, 0},
		"expired":           {fakeJWT("a", now.Unix()), false, 0},
		"random string":     {"5f0c3e2d8a9b4c1e", false, 0},
		"two segments":      {hdr + "." + enc([]byte(`{}`)), false, 0},
		"four segments":     {fakeJWT("a", 0) + ".x", false, 0},
		"empty signature":   {hdr + "." + enc([]byte(`{}`)) + ".", false, 0},
		"padded":            {hdr + "." + base64.URLEncoding.EncodeToString([]byte(`{"a":1}`)) + "." + sig, false, 0},
		"header not json":   {enc([]byte("nope")) + "." + enc([]byte(`{}`)) + "." + sig, false, 0},
		"header array":      {enc([]byte("[1]")) + "." + enc([]byte(`{}`)) + "." + sig, false, 0},
		"payload null":      {hdr + "." + enc([]byte(`null`)) + "." + sig, false, 0},
		"payload not json":  {hdr + "." + enc([]byte(`{`)) + "." + sig, false, 0},
		"exp string":        {hdr + "." + enc([]byte(`{"exp":"soon"}`)) + "." + sig, false, 0},
		"scoped token form": {"v1." + enc([]byte(`{}`)) + "." + sig, false, 0},
		"too long":          {hdr + "." + enc(make([]byte, maxJWTBytes)) + "." + sig, false, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			exp, err := checkJWTShape(tc.token, now)
			if tc.ok != (err == nil) {
				t.Fatalf("checkJWTShape = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("error %v does not wrap ErrUnauthenticated", err)
			}
			if tc.ok && tc.exp != 0 && exp.Unix() != tc.exp {
				t.Errorf("exp = %v, want %d", exp, tc.exp)
			}
		})
	}
}

// TestAttackTokenReviewCrossNamespaceUnit: a valid ServiceAccount token of
// namespace team-b must not reach team-a's sandboxes, and a principal that
// is no ServiceAccount reaches nothing, unless the scope is widened.
func TestAttackTokenReviewCrossNamespaceUnit(t *testing.T) {
	client := k8sfake.NewClientset()
	saA, saB, human := fakeJWT("a", 0), fakeJWT("b", 0), fakeJWT("h", 0)
	api := &fakeAuthAPI{users: map[string]string{
		saA:   "system:serviceaccount:team-a:agent",
		saB:   "system:serviceaccount:team-b:agent",
		human: "alice@example.com",
	}}
	api.install(client)
	ctx := context.Background()
	scoped, err := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, Scope: TokenReviewScopeCluster})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, ns string
		a               Authorizer
		want            error
	}{
		{"own namespace", saA, "team-a", scoped, nil},
		{"other namespace", saB, "team-a", scoped, ErrForbidden},
		{"not a service account", human, "team-a", scoped, ErrForbidden},
		{"no token", "", "team-a", scoped, ErrUnauthenticated},
		{"cluster scope, other namespace", saB, "team-a", cluster, nil},
		{"cluster scope, human", human, "team-a", cluster, nil},
		{"cluster scope, no token", "", "team-a", cluster, ErrUnauthenticated},
	} {
		err := tc.a.Authorize(ctx, authRequest(tc.token), tc.ns, "sb-1")
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Authorize = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, Scope: "everything"}); err == nil {
		t.Error("unknown scope accepted")
	}
}

func TestServiceAccountNamespace(t *testing.T) {
	for user, want := range map[string]string{
		"system:serviceaccount:team-a:agent": "team-a",
		"system:serviceaccount:team-a:":      "",
		"system:serviceaccount::agent":       "",
		"system:serviceaccount:team-a":       "",
		"system:serviceaccount:a:b:c":        "",
		"system:serviceaccounts:team-a":      "",
		"alice":                              "",
	} {
		if got, ok := serviceAccountNamespace(user); got != want || ok != (want != "") {
			t.Errorf("serviceAccountNamespace(%q) = %q, %v; want %q", user, got, ok, want)
		}
	}
}

// TestAttackTokenReviewFloodUnit: random tokens never reach the API
// server, JWT-shaped junk is bounded by the review budget, refusals and
// throttling never evict or poison a grant, and concurrent requests with
// one unknown token cost one review.
func TestAttackTokenReviewFloodUnit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	good := fakeJWT("good", now.Unix()+3600)
	client := k8sfake.NewClientset()
	api := &fakeAuthAPI{users: map[string]string{good: "system:serviceaccount:team-a:agent"}}
	api.install(client)
	const burst = 5
	a, err := NewTokenReviewAuthorizer(TokenReviewOptions{
		Client: client, CacheSize: 4, Now: clock,
		Limiter: flowcontrol.NewTokenBucketRateLimiter(0.0001, burst),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Authorize(ctx, authRequest(good), "team-a", "sb"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	for i := range 1000 {
		if err := a.Authorize(ctx, authRequest(fmt.Sprintf("random-%d", i)), "team-a", "sb"); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("random token: %v", err)
		}
	}
	if api.trCalls != 1 {
		t.Errorf("TokenReviews after 1000 random tokens = %d, want 1 (only the good token)", api.trCalls)
	}
	var unavailable int
	for i := range 100 {
		err := a.Authorize(ctx, authRequest(fakeJWT(fmt.Sprint("junk-", i), now.Unix()+60)), "team-a", "sb")
		switch {
		case errors.Is(err, ErrUnavailable):
			unavailable++
		case !errors.Is(err, ErrUnauthenticated):
			t.Fatalf("junk JWT: %v", err)
		}
		// The grant survives the junk: no review, no eviction.
		if err := a.Authorize(ctx, authRequest(good), "team-a", "sb"); err != nil {
			t.Fatalf("good token during the flood: %v", err)
		}
	}
	if api.trCalls != burst || unavailable != 100-(burst-1) {
		t.Errorf("TokenReviews = %d (want %d), throttled = %d (want %d)", api.trCalls, burst, unavailable, 100-(burst-1))
	}
	if err := a.Authorize(ctx, authRequest(fakeJWT("expired", now.Unix()-1)), "team-a", "sb"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired JWT: %v", err)
	}
	if api.trCalls != burst {
		t.Errorf("an expired JWT was reviewed")
	}
}

func TestTokenReviewGrantNotCachedPastExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := fakeJWT("a", now.Unix()+5)
	client := k8sfake.NewClientset()
	api := &fakeAuthAPI{users: map[string]string{tok: "system:serviceaccount:ns:a"}}
	api.install(client)
	a, _ := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, Now: func() time.Time { return now }})
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second)
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token past its exp: %v, want unauthenticated", err)
	}
}

// Throttling says nothing about a token: it is answered 503 and not
// remembered, so the next attempt is reviewed.
func TestTokenReviewThrottleNotCached(t *testing.T) {
	client := k8sfake.NewClientset()
	tok := fakeJWT("a", 0)
	api := &fakeAuthAPI{users: map[string]string{tok: "system:serviceaccount:ns:a"}}
	api.install(client)
	api.fail = apierrors.NewTooManyRequests("slow down", 1)
	a, _ := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client})
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("throttled review: %v, want ErrUnavailable", err)
	}
	api.fail = nil
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); err != nil {
		t.Errorf("after throttling: %v", err)
	}
	// Other API errors are remembered briefly, among the refusals.
	api.fail = apierrors.NewInternalError(errors.New("boom"))
	tok2 := fakeJWT("b", 0)
	if err := a.Authorize(context.Background(), authRequest(tok2), "ns", "sb"); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("internal error: %v", err)
	}
}

func TestTokenReviewSingleflight(t *testing.T) {
	client := k8sfake.NewClientset()
	tok := fakeJWT("a", 0)
	release := make(chan struct{})
	var calls atomic.Int32
	client.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls.Add(1)
		<-release
		return true, nil, apierrors.NewNotFound(schema.GroupResource{}, "x")
	})
	a, _ := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- a.Authorize(context.Background(), authRequest(tok), "ns", "sb") })
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others queue behind the flight
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a failed review allowed a request")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("TokenReviews for 50 concurrent requests with one token = %d, want 1", n)
	}
}

// A waiter that gives up does not stop the flight for the others.
func TestFlightGroupWaiterCancel(t *testing.T) {
	var g flightGroup[int, int]
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = g.do(context.Background(), 1, func() int { close(started); <-release; return 7 })
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.do(ctx, 1, func() int { return 0 }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	close(release)
	for {
		if v, err := g.do(context.Background(), 1, func() int { return 8 }); err == nil && v == 8 {
			break // the first flight ended and a new one ran
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTokenlessRequestRefusedByDefault(t *testing.T) {
	a, err := NewTokenReviewAuthorizer(TokenReviewOptions{Client: k8sfake.NewClientset()})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "http://router/", http.NoBody)
	if err := a.Authorize(context.Background(), r, "ns", "sb"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("tokenless request: %v, want unauthenticated", err)
	}
}

// An authorizer that cannot decide now answers 503 with Retry-After, not
// 500: the client may retry, and nothing is wrong with the router.
func TestProxyAuthzUnavailable(t *testing.T) {
	r, _ := newTestRouter(t, func(o *Options) {
		o.Authorizer = AuthorizerFunc(func(context.Context, *http.Request, string, string) error {
			return fmt.Errorf("%w: budget spent", ErrUnavailable)
		})
	}, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	resp := do(t, sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", 8888))
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	readDetail(t, resp, http.StatusServiceUnavailable, msgAuthzUnavailable)
}

// A cached SubjectAccessReview grant does not outlive the token's exp.
func TestSubjectAccessReviewExpiredTokenRefusedWhileCached(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := fakeJWT("a", now.Unix()+5)
	client := k8sfake.NewClientset()
	api := &fakeAuthAPI{users: map[string]string{tok: "alice"}, grants: map[string][]string{"alice": {"ns"}}}
	api.install(client)
	a, _ := NewSubjectAccessReviewAuthorizer(TokenReviewOptions{Client: client, Now: func() time.Time { return now }})
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second)
	if err := a.Authorize(context.Background(), authRequest(tok), "ns", "sb"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired token with a cached grant: %v, want unauthenticated", err)
	}
}
