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

package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

const (
	runtimePool  = "runtime-pool"
	redirectPool = "redirect-pool"
	agentSA      = "agent"
)

// TestDataPlane drives the SDK through the router to the runtime binary,
// proves the router's refusals and its pass-through of redirects, and that
// an SDK call made while the router's cache still lags a fresh claim
// succeeds, all on the real API server.
func TestDataPlane(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 110*time.Second)
	runtimeBin := buildRuntime(t)
	// The Sandbox controller runs on its own, so RouterCatchesUp can hold
	// it back.
	sandboxController := framework.StartControllers(t, env, framework.ControllerSandbox)
	framework.StartControllers(t, env, framework.ControllerSandboxTemplate,
		framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)

	// Decoys on loopback addresses outside every node's pod CIDR
	// (127.10-13.x.x, one /16 per node) and the service range (127.96.0.0/16).
	hintDecoy := newDecoy(t, "127.77.0.1")
	redirectDecoy := newDecoy(t, "127.77.0.2")
	redirectTarget := "http://" + redirectDecoy.addr + "/stolen"
	fixture := startBackends(t, env, runtimeBin, redirectTarget)

	routerURL := startRouter(t, env)
	token, otherNS, otherToken := identities(t, env)

	createPool(t, env, runtimePool, 2, nil)
	createPool(t, env, redirectPool, 1, map[string]string{backendLabel: backendRedirect})
	members := waitPool(t, env, runtimePool, 2)
	fixture.waitServing(t, members...)
	fixture.waitServing(t, waitPool(t, env, redirectPool, 1)...)

	client, err := sdk.NewClient(env.Config, sdk.WithRouterURL(routerURL), sdk.WithBearerToken(token),
		sdk.WithDefaultNamespace(env.Namespace), sdk.WithDefaultReadyTimeout(waitTimeout))
	if err != nil {
		t.Fatal(err)
	}

	// Happy path: a warm claim, commands, a stream, files, through the
	// router with the agent's token.
	sb, err := client.Create(ctx, runtimePool)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	claimName := sb.ClaimName()
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	if !slices.Contains(members, sb.SandboxName()) {
		t.Errorf("claimed sandbox %q is not one of the pool's pre-existing members %v", sb.SandboxName(), members)
	}
	// No wait for the router here: a user runs commands right after
	// Create, while the router's cache may still be catching up with the
	// claim (the SDK resends the router's 404 for a short while).

	t.Run("Run", func(t *testing.T) {
		res, err := sb.Run(ctx, "echo hello")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Stdout != "hello\n" || res.Stderr != "" || res.ExitCode != 0 {
			t.Errorf("Run(echo hello) = %+v, want stdout \"hello\\n\", exit 0", res)
		}
		res, err = sb.Run(ctx, "sh -c 'echo oops >&2; exit 3'")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Stdout != "" || res.Stderr != "oops\n" || res.ExitCode != 3 {
			t.Errorf("Run(exit 3) = %+v, want stderr \"oops\\n\", exit 3", res)
		}
	})

	t.Run("Stream", func(t *testing.T) {
		cs, err := sb.Stream(ctx, "sh -c 'echo one; sleep 2; echo two'")
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		defer cs.Close()
		type arrival struct {
			data string
			at   time.Time
		}
		var got []arrival
		for cs.Next() {
			c := cs.Chunk()
			if c.Source != sdk.Stdout {
				t.Errorf("chunk %q from %s, want stdout", c.Data, c.Source)
			}
			got = append(got, arrival{c.Data, time.Now()})
		}
		end := time.Now()
		if err := cs.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if cs.ExitCode() != 0 {
			t.Errorf("exit code %d, want 0", cs.ExitCode())
		}
		var all strings.Builder
		for _, a := range got {
			all.WriteString(a.data)
		}
		if all.String() != "one\ntwo\n" || len(got) < 2 {
			t.Fatalf("chunks %q, want \"one\\n\" then \"two\\n\"", all.String())
		}
		// The first chunk must come while the command still runs (it
		// sleeps 2s before its last line), not buffered until the end.
		if got[0].data != "one\n" {
			t.Errorf("first chunk %q, want \"one\\n\"", got[0].data)
		}
		if gap := end.Sub(got[0].at); gap < time.Second/2 {
			t.Errorf("first chunk arrived only %v before the exit line: output was buffered, not streamed", gap)
		}
	})

	t.Run("Files", func(t *testing.T) {
		data := make([]byte, 0, 3*256)
		for range 3 {
			for i := range 256 {
				data = append(data, byte(i))
			}
		}
		if err := sb.Write(ctx, "data/blob.bin", data); err != nil {
			t.Fatalf("Write: %v", err)
		}
		back, err := sb.Read(ctx, "data/blob.bin")
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if !bytes.Equal(back, data) {
			t.Errorf("Read returned %d bytes, not the %d written", len(back), len(data))
		}
		entries, err := sb.List(ctx, "data")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(entries) != 1 || entries[0].Name != "blob.bin" || entries[0].Type != sdk.FileTypeFile || entries[0].Size != int64(len(data)) {
			t.Errorf("List(data) = %+v, want only blob.bin, a file of %d bytes", entries, len(data))
		}
		for path, want := range map[string]bool{"data/blob.bin": true, "data/missing.bin": false} {
			ok, err := sb.Exists(ctx, path)
			if err != nil {
				t.Fatalf("Exists(%s): %v", path, err)
			}
			if ok != want {
				t.Errorf("Exists(%s) = %v, want %v", path, ok, want)
			}
		}
		// The command sees the same file system.
		res, err := sb.Run(ctx, "wc -c data/blob.bin")
		if err != nil || res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "768 data/blob.bin" {
			t.Errorf("wc -c = %+v, %v", res, err)
		}
	})

	t.Run("Attach", func(t *testing.T) {
		again, err := client.Attach(ctx, claimName)
		if err != nil {
			t.Fatalf("Attach(%s): %v", claimName, err)
		}
		defer again.Disconnect()
		if again.SandboxName() != sb.SandboxName() || again.PodIP() != sb.PodIP() {
			t.Errorf("Attach found sandbox %s at %s, want %s at %s", again.SandboxName(), again.PodIP(), sb.SandboxName(), sb.PodIP())
		}
		b, err := again.Read(ctx, "data/blob.bin")
		if err != nil || len(b) != 768 {
			t.Errorf("Read through the attached handle: %d bytes, %v", len(b), err)
		}
		if _, err := client.Attach(ctx, "no-such-claim"); !errors.Is(err, sdk.ErrSandboxDeleted) {
			t.Errorf("Attach(no-such-claim) = %v, want ErrSandboxDeleted", err)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		target := map[string]string{
			"X-Sandbox-ID":        sb.SandboxName(),
			"X-Sandbox-Namespace": env.Namespace,
		}
		with := func(extra map[string]string) map[string]string {
			h := map[string]string{}
			for k, v := range target {
				h[k] = v
			}
			for k, v := range extra {
				h[k] = v
			}
			return h
		}
		// The agent's token passes, the baseline for every refusal below.
		expect(t, ctx, routerURL, "", token, target, http.StatusOK, "")

		resp := expect(t, ctx, routerURL, "no token", "", target, http.StatusUnauthorized, "unauthenticated")
		if resp != nil && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", resp.Header.Get("WWW-Authenticate"))
		}
		expect(t, ctx, routerURL, "garbage token", "not-a-real-token", target, http.StatusUnauthorized, "unauthenticated")
		expect(t, ctx, routerURL, "other namespace's token", otherToken, target, http.StatusForbidden, "forbidden")
		// That token is valid and authorized in its own namespace: there
		// it gets past the authorizer and finds no such sandbox.
		expect(t, ctx, routerURL, "other namespace's token at home", otherToken,
			map[string]string{"X-Sandbox-ID": sb.SandboxName(), "X-Sandbox-Namespace": otherNS},
			http.StatusNotFound, "Sandbox not found: "+sb.SandboxName())

		apiHost, err := url.Parse(env.Config.Host)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, ctx, routerURL, "hint at the API server", token,
			with(map[string]string{"X-Sandbox-Pod-IP": apiHost.Hostname(), "X-Sandbox-Port": apiHost.Port()}),
			http.StatusForbidden, "X-Sandbox-Pod-IP does not match the sandbox's pod.")
		decoyIP, _, _ := strings.Cut(hintDecoy.addr, ":")
		expect(t, ctx, routerURL, "hint at the decoy", token,
			with(map[string]string{"X-Sandbox-Pod-IP": decoyIP, "X-Sandbox-Port": hintDecoy.port()}),
			http.StatusForbidden, "X-Sandbox-Pod-IP does not match the sandbox's pod.")
		hintDecoy.assertUntouched(t)

		expect(t, ctx, routerURL, "unknown sandbox", token,
			with(map[string]string{"X-Sandbox-ID": "no-such-sandbox"}),
			http.StatusNotFound, "Sandbox not found: no-such-sandbox")
		// An unclaimed pool member is not reachable by name either.
		var unclaimed string
		for _, m := range members {
			if m != sb.SandboxName() {
				unclaimed = m
			}
		}
		expect(t, ctx, routerURL, "unclaimed pool member", token,
			with(map[string]string{"X-Sandbox-ID": unclaimed}),
			http.StatusNotFound, "Sandbox not found: "+unclaimed)
	})

	t.Run("Redirect", func(t *testing.T) {
		rsb, err := client.Create(ctx, redirectPool)
		if err != nil {
			t.Fatalf("Create(%s): %v", redirectPool, err)
		}
		defer func() {
			if err := rsb.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		// The SDK does not follow the redirect: the op fails with the
		// 302 (Run is never retried, Read does not retry a 3xx).
		_, err = rsb.Run(ctx, "echo hello")
		var he *sdk.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusFound {
			t.Errorf("Run on a redirecting backend = %v, want *sdk.HTTPError 302", err)
		}
		_, err = rsb.Read(ctx, "anything")
		if !errors.As(err, &he) || he.StatusCode != http.StatusFound {
			t.Errorf("Read on a redirecting backend = %v, want *sdk.HTTPError 302", err)
		}

		// The router passes the 302 through unchanged.
		resp := expect(t, ctx, routerURL, "redirecting backend", token,
			map[string]string{"X-Sandbox-ID": rsb.SandboxName(), "X-Sandbox-Namespace": env.Namespace},
			http.StatusFound, "")
		if resp != nil && resp.Header.Get("Location") != redirectTarget {
			t.Errorf("Location %q, want the backend's %q unchanged", resp.Header.Get("Location"), redirectTarget)
		}
		redirectDecoy.assertUntouched(t)
	})

	t.Run("Close", func(t *testing.T) {
		if err := sb.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := sb.Run(ctx, "echo late"); !errors.Is(err, sdk.ErrAlreadyClosed) {
			t.Errorf("Run after Close = %v, want ErrAlreadyClosed", err)
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, claimName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("claim %s still exists after Close", claimName)
		}
	})
	// A claimed warm sandbox is routable as soon as the takeover removed
	// the pool label from the Sandbox: the Pod's copy of the label, which
	// the Sandbox controller removes in a patch of its own, gates nothing.
	// With that controller held back, the Pod keeps the label all along,
	// and Run must still reach the sandbox (before, the router answered
	// 404 until the Pod's patch, and Run failed once the SDK's settle
	// window was over).
	t.Run("RoutableBeforePodMetadataPatch", func(t *testing.T) {
		fixture.waitServing(t, waitPool(t, env, runtimePool, 2)...)
		sandboxController.Stop()
		claimed, err := client.Create(ctx, runtimePool)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		defer func() {
			if err := claimed.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if res, err := claimed.Run(runCtx, "echo routed"); err != nil || res.Stdout != "routed\n" || res.ExitCode != 0 {
			t.Errorf("Run with the Pod's metadata patch held back = %+v, %v; want \"routed\\n\", exit 0", res, err)
		}
		podLabel := func() (bool, error) {
			pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, claimed.SandboxName(), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			_, ok := pod.Labels[agentsv1beta1.WarmPoolSandboxLabel]
			return ok, nil
		}
		if still, err := podLabel(); err != nil || !still {
			t.Fatalf("the claimed Pod lost its pool label with the Sandbox controller stopped (%v, %v): the test proves nothing", still, err)
		}
		framework.StartControllers(t, env, framework.ControllerSandbox)
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
			still, err := podLabel()
			return !still, err
		})
		if err != nil {
			t.Errorf("the Sandbox controller never removed the pool label from the claimed Pod: %v", err)
		}
	})

	hintDecoy.assertUntouched(t)
	redirectDecoy.assertUntouched(t)
}

// startRouter serves an in-process router on 127.0.0.1 in
// subjectaccessreview mode, with loopback Pod IPs allowed (kwok's).
func startRouter(t *testing.T, env *framework.Env) string {
	t.Helper()
	authz, err := router.NewSubjectAccessReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube})
	if err != nil {
		t.Fatal(err)
	}
	routerURL, _ := startRouterWith(t, env, func(o *router.Options) { o.Authorizer = authz })
	return routerURL
}

// startRouterWith serves an in-process router on 127.0.0.1 with loopback
// Pod IPs allowed (kwok's), allow-all unless mutate says otherwise.
func startRouterWith(t *testing.T, env *framework.Env, mutate func(*router.Options)) (string, *router.Router) {
	t.Helper()
	return framework.StartRouter(t, env, mutate)
}

// identities creates the agent's ServiceAccount with get on
// sandboxes/proxy in the test namespace, and one in a second namespace
// with the same rights there only, and mints a token for each.
func identities(t *testing.T, env *framework.Env) (token, otherNS, otherToken string) {
	t.Helper()
	otherNS = framework.CreateNamespace(t, env, "other")
	return grantProxy(t, env, env.Namespace), otherNS, grantProxy(t, env, otherNS)
}

// grantProxy lets ServiceAccount agent in ns get sandboxes/proxy in ns,
// once RBAC is in effect, and returns a token for it.
func grantProxy(t *testing.T, env *framework.Env, ns string) string {
	t.Helper()
	framework.GrantSandboxProxy(t, env, ns, agentSA)
	return framework.ServiceAccountToken(t, env, ns, agentSA)
}

func createPool(t *testing.T, env *framework.Env, name string, replicas int32, podLabels map[string]string) {
	t.Helper()
	ctx := context.Background()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{
				ObjectMeta: agentsv1beta1.PodMetadata{Labels: podLabels},
				// kwok runs nothing: the fixture serves the runtime.
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "runtime", Image: "sandbox-runtime:test"}}},
			},
		}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(replicas), TemplateRef: extv1beta1.SandboxTemplateRef{Name: name}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPool waits until the pool reports n ready members and returns their
// names.
func waitPool(t *testing.T, env *framework.Env, name string, n int32) []string {
	t.Helper()
	var names []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || p.Status.ReadyReplicas != n || p.Status.Replicas != n {
			return false, nil
		}
		list, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: poolSelector(name).String()})
		if err != nil {
			return false, nil
		}
		names = names[:0]
		for i := range list.Items {
			names = append(names, list.Items[i].Name)
		}
		return len(names) == int(n), nil
	})
	if err != nil {
		t.Fatalf("pool %s never had %d ready members", name, n)
	}
	return names
}

func poolSelector(pool string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{agentsv1beta1.WarmPoolSandboxLabel: agentsv1beta1.NameHash(pool)})
}

// expect sends GET / to the router for the sandbox in headers and checks
// the status and, when detail is set, the {"detail":...} body.
func expect(t *testing.T, ctx context.Context, routerURL, what, token string, headers map[string]string, status int, detail string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, routerURL+"/", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("%s: status %d %s, want %d", what, resp.StatusCode, body, status)
		return resp
	}
	if detail != "" {
		var got struct {
			Detail *string `json:"detail"`
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Detail == nil || *got.Detail != detail {
			t.Errorf("%s: body %s, want {\"detail\":%q}", what, body, detail)
		}
	}
	return resp
}
