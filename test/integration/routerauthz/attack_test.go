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

package routerauthz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestAttackTokenlessRequestRefused: in tokenreview mode, as configured by
// default, a request without any token must not reach a sandbox.
func TestAttackTokenlessRequestRefused(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	authz, err := router.NewTokenReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube})
	if err != nil {
		t.Fatal(err)
	}
	routerURL := startRouter(t, env, authz)
	sb := createSandbox(t, env, env.Namespace, "victim")
	owner := framework.ServiceAccountToken(t, env, env.Namespace, "owner")
	// Positive control: the sandbox is there and routable.
	waitOK(t, routerURL, "owner's token", env.Namespace, sb, owner)
	expect(t, routerURL, "no token", env.Namespace, sb, "", http.StatusUnauthorized)
}

// TestAttackTokenReviewCrossNamespace: a perfectly valid ServiceAccount
// token of another namespace must not reach a tenant's sandbox in
// tokenreview mode; only widening the scope on purpose allows it.
func TestAttackTokenReviewCrossNamespace(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	authz, err := router.NewTokenReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube})
	if err != nil {
		t.Fatal(err)
	}
	routerURL := startRouter(t, env, authz)
	sb := createSandbox(t, env, env.Namespace, "victim")
	owner := framework.ServiceAccountToken(t, env, env.Namespace, "owner")
	attackerNS := framework.CreateNamespace(t, env, "attacker")
	attacker := framework.ServiceAccountToken(t, env, attackerNS, "intruder")

	waitOK(t, routerURL, "owner's token", env.Namespace, sb, owner)
	expect(t, routerURL, "another namespace's ServiceAccount", env.Namespace, sb, attacker, http.StatusForbidden)

	// The documented way to widen it: every authenticated principal.
	wide, err := router.NewTokenReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube, Scope: router.TokenReviewScopeCluster})
	if err != nil {
		t.Fatal(err)
	}
	wideURL := startRouter(t, env, wide)
	waitOK(t, wideURL, "cluster scope, another namespace's ServiceAccount", env.Namespace, sb, attacker)
}

// randomJWT is junk shaped like a live JWT: it passes every cheap check
// and costs a TokenReview unless the router rations them.
func randomJWT() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"iss":"https://kubernetes.default.svc","sub":"%x","exp":%d}`, b[:8], time.Now().Add(time.Hour).Unix())
	return enc([]byte(`{"alg":"RS256","kid":"x"}`)) + "." + enc([]byte(claims)) + "." + enc(b)
}

// TestAttackTokenReviewFlood: a flood of random tokens, some shaped like
// JWTs, while a legitimate ServiceAccount token keeps working: the
// legitimate caller never sees anything but 200, the flood never a 500,
// and the TokenReviews the router sends stay within its review budget
// rather than one per junk token.
func TestAttackTokenReviewFlood(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	reviews, counter := reviewClient(t, env)
	const qps, burst = 5, 10
	authz, err := router.NewTokenReviewAuthorizer(router.TokenReviewOptions{
		Client: reviews, ReviewQPS: qps, ReviewBurst: burst, CacheSize: 32,
	})
	if err != nil {
		t.Fatal(err)
	}
	routerURL := startRouter(t, env, authz)
	sb := createSandbox(t, env, env.Namespace, "busy")
	legit := framework.ServiceAccountToken(t, env, env.Namespace, "agent")
	waitOK(t, routerURL, "legitimate token", env.Namespace, sb, legit)

	ctx := framework.Context(t, 2*time.Minute)
	start := time.Now()
	const attackers, perAttacker = 8, 250
	var (
		mu          sync.Mutex
		floodCodes  = map[int]int{}
		legitCodes  = map[int]int{}
		legitErrors []error
		wg          sync.WaitGroup
	)
	stop := make(chan struct{})
	var legitWG sync.WaitGroup
	legitWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, _, err := call(ctx, routerURL, env.Namespace, sb, legit)
			mu.Lock()
			if err != nil {
				legitErrors = append(legitErrors, err)
			} else {
				legitCodes[code]++
			}
			mu.Unlock()
		}
	})
	for a := range attackers {
		wg.Go(func() {
			for i := range perAttacker {
				tok := randomJWT()
				if (a+i)%2 == 0 {
					b := make([]byte, 24)
					_, _ = rand.Read(b)
					tok = hex.EncodeToString(b) // an opaque random token
				}
				code, _, err := call(ctx, routerURL, env.Namespace, sb, tok)
				mu.Lock()
				if err == nil {
					floodCodes[code]++
				} else {
					floodCodes[-1]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	legitWG.Wait()
	elapsed := time.Since(start)

	t.Logf("flood of %d tokens in %v: flood statuses %v, legitimate statuses %v, TokenReviews %d",
		attackers*perAttacker, elapsed, floodCodes, legitCodes, counter.tokenReviews.Load())
	if len(legitErrors) > 0 {
		t.Errorf("legitimate requests failed: %v", legitErrors[0])
	}
	if legitCodes[http.StatusOK] == 0 || len(legitCodes) != 1 {
		t.Errorf("legitimate statuses during the flood = %v, want only 200", legitCodes)
	}
	for code, n := range floodCodes {
		if code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
			t.Errorf("flood got %d × status %d, want only 401 (refused) or 503 (review budget spent)", n, code)
		}
	}
	// One review for the legitimate token, then the budget: burst plus
	// what refills while the flood lasts (plus one second of slack).
	bound := int64(1 + burst + qps*(elapsed.Seconds()+1))
	if got := counter.tokenReviews.Load(); got > bound {
		t.Errorf("TokenReviews sent = %d for %d junk tokens, want <= %d (the review budget)", got, attackers*perAttacker, bound)
	}
}

// TestAttackScopedTokenReplayAfterRecreate: a scoped token minted for one
// Sandbox must not open the Sandbox created later under the same name.
func TestAttackScopedTokenReplayAfterRecreate(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	secret := []byte("0123456789abcdef0123456789abcdef")
	authz, err := router.NewScopedTokenAuthorizer(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := router.NewScopedTokenAuthorizer(secret, nil, router.RequireScopedTokenUID())
	if err != nil {
		t.Fatal(err)
	}
	routerURL, strictURL := startRouter(t, env, authz), startRouter(t, env, strict)

	first := createSandbox(t, env, env.Namespace, "session")
	oldToken, err := router.MintScopedTokenForSandbox(secret, env.Namespace, first.name, types.UID(first.uid), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, routerURL, "token of the first incarnation", env.Namespace, first, oldToken)

	// The session ends; another user's session gets the same name.
	deleteSandbox(t, env, env.Namespace, first)
	second := createSandbox(t, env, env.Namespace, "session")
	if second.uid == first.uid {
		t.Fatal("the recreated sandbox has the same UID")
	}
	newToken, err := router.MintScopedTokenForSandbox(secret, env.Namespace, second.name, types.UID(second.uid), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := waitOK(t, routerURL, "token of the second incarnation", env.Namespace, second, newToken)
	if !strings.Contains(body, second.uid) {
		t.Fatalf("the router reached %s, want the second incarnation %s", body, second.uid)
	}
	expect(t, routerURL, "old token replayed against the recreated sandbox", env.Namespace, second, oldToken, http.StatusForbidden)

	// With the flag, only UID-bound tokens are accepted.
	unbound, err := router.MintScopedToken(secret, env.Namespace, second.name, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, strictURL, "strict router, bound token", env.Namespace, second, newToken)
	expect(t, strictURL, "strict router, token without uid", env.Namespace, second, unbound, http.StatusUnauthorized)
	expect(t, strictURL, "strict router, old token", env.Namespace, second, oldToken, http.StatusForbidden)
}

// shippedAudiences reads --authz-tokenreview-audiences from the shipped
// router Deployment, so this test attacks the router as installed.
func shippedAudiences(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(framework.RepoRoot() + "/manifests/router/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	var auds []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--authz-tokenreview-audiences="); ok {
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					auds = append(auds, s)
				}
			}
		}
	}
	return auds
}

// TestAttackFullAPITokenRefused: the router as shipped must not take a
// caller's full API token (one it or a sandbox could replay against the
// API server); it takes tokens minted for its own audience, which the API
// server refuses.
func TestAttackFullAPITokenRefused(t *testing.T) {
	env := framework.Setup(t)
	framework.StartSandboxController(t, env)
	auds := shippedAudiences(t)
	authz, err := router.NewSubjectAccessReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube, Audiences: auds})
	if err != nil {
		t.Fatal(err)
	}
	routerURL := startRouter(t, env, authz)
	sb := createSandbox(t, env, env.Namespace, "target")
	framework.GrantSandboxProxy(t, env, env.Namespace, "agent")
	bound := framework.ServiceAccountToken(t, env, env.Namespace, "agent", router.ShippedAudience)
	full := framework.ServiceAccountToken(t, env, env.Namespace, "agent")

	// The attack first, once the router's cache knows the sandbox (404
	// until then), so it fails as the attack and not on the control.
	var code int
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		code, _, err = call(ctx, routerURL, env.Namespace, sb, full)
		return err == nil && code != http.StatusNotFound, nil
	})
	if err != nil || code != http.StatusUnauthorized {
		t.Errorf("full API token: status %d (%v), want 401", code, err)
	}
	waitOK(t, routerURL, "audience-bound token", env.Namespace, sb, bound)

	// And the token the router accepts opens nothing at the API server.
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = bound
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CoreV1().Pods(env.Namespace).List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("the router's token at the API server: %v, want 401", err)
	}
}
