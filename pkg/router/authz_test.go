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
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestBearerToken(t *testing.T) {
	cases := map[string]struct {
		header string
		want   string
		ok     bool
	}{
		"bearer":        {"Bearer abc", "abc", true},
		"lower case":    {"bearer abc", "abc", true},
		"mixed case":    {"BeArEr abc", "abc", true},
		"trimmed":       {"Bearer   abc  ", "abc", true},
		"empty token":   {"Bearer ", "", false},
		"only spaces":   {"Bearer    ", "", false},
		"basic":         {"Basic dXNlcjpwYXNz", "", false},
		"no space":      {"Bearerabc", "", false},
		"missing":       {"", "", false},
		"scheme prefix": {"Bearerx abc", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://x/", http.NoBody)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, ok := BearerToken(r)
			if got != tc.want || ok != tc.ok {
				t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// fakeAuthAPI answers TokenReviews from a token→user map and
// SubjectAccessReviews from a user→namespaces grant, counting calls.
type fakeAuthAPI struct {
	mu      sync.Mutex
	users   map[string]string   // token -> username
	grants  map[string][]string // username -> namespaces with get sandboxes/proxy
	trCalls int
	sarSeen []authorizationv1.SubjectAccessReviewSpec
	fail    error
}

func (f *fakeAuthAPI) install(client *k8sfake.Clientset) {
	client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.trCalls++
		if f.fail != nil {
			return true, nil, f.fail
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if u, ok := f.users[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{
				Authenticated: true,
				User:          authenticationv1.UserInfo{Username: u, Groups: []string{"system:authenticated"}, Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}},
				Audiences:     tr.Spec.Audiences,
			}
		}
		return true, tr, nil
	})
	client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		f.sarSeen = append(f.sarSeen, sar.Spec)
		ra := sar.Spec.ResourceAttributes
		if ra != nil && ra.Group == "agents.x-k8s.io" && ra.Resource == "sandboxes" && ra.Subresource == "proxy" && ra.Verb == "get" {
			for _, ns := range f.grants[sar.Spec.User] {
				if ns == ra.Namespace {
					sar.Status.Allowed = true
				}
			}
		}
		return true, sar, nil
	})
}

func authRequest(token string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://router/", http.NoBody)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestTokenReviewAuthorizer(t *testing.T) {
	client := k8sfake.NewClientset()
	api := &fakeAuthAPI{users: map[string]string{"good": "alice"}}
	api.install(client)
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	ctx := context.Background()

	// The reference behaviour, every part of it opted into: tokenless
	// requests pass, opaque tokens are reviewed, any principal anywhere.
	optional, err := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, Audiences: []string{"sandbox-router"}, Now: clock,
		AllowMissingToken: true, AllowOpaqueTokens: true, Scope: TokenReviewScopeCluster})
	if err != nil {
		t.Fatal(err)
	}
	if err := optional.Authorize(ctx, authRequest(""), "ns", "a"); err != nil {
		t.Errorf("tokenless request without require-token: %v", err)
	}
	if err := optional.Authorize(ctx, authRequest("good"), "ns", "a"); err != nil {
		t.Errorf("good token: %v", err)
	}
	if err := optional.Authorize(ctx, authRequest("bad"), "ns", "a"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("bad token: %v, want unauthenticated", err)
	}
	// Both verdicts are cached for the TTL.
	_ = optional.Authorize(ctx, authRequest("good"), "other", "b")
	_ = optional.Authorize(ctx, authRequest("bad"), "ns", "a")
	if api.trCalls != 2 {
		t.Errorf("TokenReview calls = %d, want 2 (cached)", api.trCalls)
	}
	now = now.Add(DefaultTokenReviewTTL)
	_ = optional.Authorize(ctx, authRequest("good"), "ns", "a")
	if api.trCalls != 3 {
		t.Errorf("TokenReview calls after TTL = %d, want 3", api.trCalls)
	}

	required, _ := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, Now: clock})
	if err := required.Authorize(ctx, authRequest(""), "ns", "a"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("tokenless with require-token: %v", err)
	}

	// API errors are neither allow nor deny, and cached only briefly.
	api.fail = errors.New("apiserver down")
	flaky, _ := NewTokenReviewAuthorizer(TokenReviewOptions{Client: client, TTL: 30 * time.Second, Now: clock,
		AllowOpaqueTokens: true, Scope: TokenReviewScopeCluster})
	err = flaky.Authorize(ctx, authRequest("good"), "ns", "a")
	if err == nil || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden) {
		t.Fatalf("API error gave %v", err)
	}
	api.fail = nil
	calls := api.trCalls
	_ = flaky.Authorize(ctx, authRequest("good"), "ns", "a")
	if api.trCalls != calls {
		t.Error("API error not cached")
	}
	now = now.Add(10 * time.Second) // max(30s/3, 1s)
	if err := flaky.Authorize(ctx, authRequest("good"), "ns", "a"); err != nil {
		t.Errorf("after error TTL: %v", err)
	}
}

func TestSubjectAccessReviewAuthorizer(t *testing.T) {
	client := k8sfake.NewClientset()
	api := &fakeAuthAPI{
		users:  map[string]string{"alice-token": "alice", "bob-token": "bob"},
		grants: map[string][]string{"alice": {"team-a"}},
	}
	api.install(client)
	now := time.Unix(1000, 0)
	a, err := NewSubjectAccessReviewAuthorizer(TokenReviewOptions{Client: client, Now: func() time.Time { return now }, AllowOpaqueTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name, token, ns string
		want            error
	}{
		{"no token", "", "team-a", ErrUnauthenticated},
		{"unknown token", "nope", "team-a", ErrUnauthenticated},
		{"granted namespace", "alice-token", "team-a", nil},
		{"other namespace", "alice-token", "team-b", ErrForbidden},
		{"no grant", "bob-token", "team-a", ErrForbidden},
	}
	for _, tc := range cases {
		err := a.Authorize(ctx, authRequest(tc.token), tc.ns, "sb-1")
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Authorize = %v, want %v", tc.name, err, tc.want)
		}
	}
	got := api.sarSeen[0]
	if got.User != "alice" || len(got.Groups) != 1 || got.Extra["k"][0] != "v" || got.ResourceAttributes.Name != "sb-1" ||
		got.ResourceAttributes.Namespace != "team-a" {
		t.Errorf("SAR spec = %+v / %+v", got, got.ResourceAttributes)
	}
	// Verdicts are cached per (token, namespace, name).
	n := len(api.sarSeen)
	_ = a.Authorize(ctx, authRequest("alice-token"), "team-a", "sb-1")
	_ = a.Authorize(ctx, authRequest("alice-token"), "team-b", "sb-1")
	if len(api.sarSeen) != n {
		t.Errorf("SAR calls = %d, want %d (cached)", len(api.sarSeen), n)
	}
	_ = a.Authorize(ctx, authRequest("alice-token"), "team-a", "sb-2")
	if len(api.sarSeen) != n+1 {
		t.Errorf("SAR calls = %d, want %d for a new name", len(api.sarSeen), n+1)
	}
}

// TestExpiringLRU pins what the authorizers rely on from the wrapped
// LRUExpireCache: the least recently used entry goes first, and an entry
// ends exactly when its TTL does (not one instant later).
func TestExpiringLRU(t *testing.T) {
	now := time.Unix(0, 0)
	c := newExpiringLRU[string, int](2, func() time.Time { return now })
	c.add("a", 1, time.Second)
	c.add("b", 2, time.Second)
	_, _ = c.get("a") // a is now most recent
	c.add("c", 3, time.Second)
	if _, ok := c.get("b"); ok {
		t.Error("least recently used entry not evicted")
	}
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Errorf("recent entry: got %d, %t; want 1, true", v, ok)
	}
	now = now.Add(time.Second - time.Nanosecond)
	if _, ok := c.get("a"); !ok {
		t.Error("entry gone before its TTL ended")
	}
	now = now.Add(time.Nanosecond)
	if _, ok := c.get("a"); ok {
		t.Error("entry returned at the instant its TTL ended")
	}
}
