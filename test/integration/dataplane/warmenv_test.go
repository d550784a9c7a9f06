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
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// The warm env tests (docs/design/warm-env.md, test plan): claims with env
// on an opted-in template take warm members, and every command run
// through the router (or the SDK in direct mode) sees exactly its own
// claim's variables, whatever a client sends.

const envPool = "env-pool"

// warmEnvSetup starts the controllers, the runtime fixture and an
// allow-all router, and an opted-in template (policy Allowed, warm env on
// the runtime port) with a pool of n Ready, serving members.
func warmEnvSetup(t *testing.T, n int32) (*framework.Env, string) {
	t.Helper()
	s := warmEnvSetupWith(t, n, nil)
	return s.env, s.routerURL
}

// warmEnvParts is what warmEnvSetupWith started.
type warmEnvParts struct {
	env         *framework.Env
	routerURL   string
	router      *router.Router
	controllers *framework.Controllers
	backends    *backends
}

// warmEnvSetupWith is warmEnvSetup with the router's options edited.
func warmEnvSetupWith(t *testing.T, n int32, mutate func(*router.Options)) warmEnvParts {
	t.Helper()
	env := framework.Setup(t)
	runtimeBin := buildRuntime(t)
	ctrls := framework.StartControllers(t, env, framework.ControllerSandbox, framework.ControllerSandboxTemplate,
		framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	fixture := startBackends(t, env, runtimeBin, "")
	routerURL, rt := startRouterWith(t, env, mutate)
	createEnvPool(t, env, envPool, n, func(tmpl *extv1beta1.SandboxTemplate) {
		tmpl.Annotations = map[string]string{extv1beta1.WarmEnvPortAnnotation: strconv.Itoa(runtimePort)}
	})
	fixture.waitServing(t, waitPool(t, env, envPool, n)...)
	return warmEnvParts{env: env, routerURL: routerURL, router: rt, controllers: ctrls, backends: fixture}
}

// createEnvPool is createPool with the policy Allowed and edit applied to
// the template.
func createEnvPool(t *testing.T, env *framework.Env, name string, replicas int32, edit func(*extv1beta1.SandboxTemplate)) {
	t.Helper()
	ctx := context.Background()
	tmpl := &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{
			SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "runtime", Image: "sandbox-runtime:test"}}},
			}},
			EnvVarsInjectionPolicy: extv1beta1.EnvVarsInjectionPolicyAllowed,
		},
	}
	if edit != nil {
		edit(tmpl)
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

// randomValue is a value no log, metric or other sandbox can hold by
// chance.
func randomValue(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "sk-" + hex.EncodeToString(b)
}

// createEnvClaim creates a claim on pool with env.
func createEnvClaim(t *testing.T, ctx context.Context, env *framework.Env, name, pool string, vars ...extv1beta1.EnvVar) {
	t.Helper()
	claim := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: pool}, Env: vars},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitWarmStart waits until the claim's status names a Sandbox and has a
// WarmStart condition, and returns both.
func waitWarmStart(t *testing.T, ctx context.Context, env *framework.Env, name string) (string, *metav1.Condition) {
	t.Helper()
	var sandbox string
	var cond *metav1.Condition
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		sandbox = c.Status.SandboxStatus.Name
		cond = meta.FindStatusCondition(c.Status.Conditions, extv1beta1.ClaimConditionWarmStart)
		return sandbox != "" && cond != nil, nil
	})
	if err != nil {
		t.Fatalf("claim %s never named a Sandbox with a WarmStart condition (sandbox %q)", name, sandbox)
	}
	return sandbox, cond
}

// warmClaim waits until the claim is bound warm and routable, and returns
// its Sandbox's name.
func warmClaim(t *testing.T, ctx context.Context, env *framework.Env, routerURL, name string) string {
	t.Helper()
	sandbox, cond := waitWarmStart(t, ctx, env, name)
	if cond.Status != metav1.ConditionTrue {
		t.Fatalf("claim %s: WarmStart %s/%s, want True", name, cond.Status, cond.Reason)
	}
	sb, err := env.Agents.AgentsV1beta1().Sandboxes(env.Namespace).Get(ctx, sandbox, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lt := sb.Labels[agentsv1beta1.LaunchTypeLabel]; lt != agentsv1beta1.LaunchTypeWarm {
		t.Errorf("claim %s: launch-type %q, want warm", name, lt)
	}
	waitRoute(t, ctx, routerURL, env.Namespace, sandbox)
	return sandbox
}

// routerEnv runs `env` in sandbox id through the router on path
// (/execute or /execute/stream) with extra request headers, and returns
// the status and, on 200, the variables it printed.
func routerEnv(t *testing.T, ctx context.Context, routerURL, ns, id, path string, header map[string][]string) (int, []string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, routerURL+path, strings.NewReader(`{"command":"env"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Sandbox-ID", id)
	req.Header.Set("X-Sandbox-Namespace", ns)
	req.Header.Set("X-Sandbox-Port", strconv.Itoa(runtimePort))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s %s/%s: %v", path, ns, id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Logf("POST %s %s/%s: %d %s", path, ns, id, resp.StatusCode, b)
		return resp.StatusCode, nil
	}
	var out strings.Builder
	if path == "/execute" {
		var res struct {
			Stdout string `json:"stdout"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		out.WriteString(res.Stdout)
	} else {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev struct{ Type, Data string }
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == "stdout" {
				out.WriteString(ev.Data)
			}
		}
	}
	return resp.StatusCode, strings.Split(strings.TrimSpace(out.String()), "\n")
}

// checkEnv reports the variables of got that differ from want: each name
// in want must be set to its value, or be unset when the value is "".
func checkEnv(t *testing.T, what string, got []string, want map[string]string) {
	t.Helper()
	for name, value := range want {
		i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, name+"=") })
		switch {
		case value == "" && i >= 0:
			t.Errorf("%s: %s is set (%q), want unset", what, name, got[i])
		case value != "" && (i < 0 || got[i] != name+"="+value):
			t.Errorf("%s: %s is not %q: env %q", what, name, value, got)
		}
	}
}

// TestWarmEnvServedWarmAndIsolated is test plan item 1: claims A (TOKEN
// and TASK=1), B (TASK=2) and C (no env) all take warm members, and `env`
// through the router, streamed or not, and through the SDK in both modes,
// shows each exactly its own variables.
func TestWarmEnvServedWarmAndIsolated(t *testing.T) {
	env, routerURL := warmEnvSetup(t, 3)
	ctx := framework.Context(t, 110*time.Second)
	token := randomValue(t)
	createEnvClaim(t, ctx, env, "claim-a", envPool, extv1beta1.EnvVar{Name: "TOKEN", Value: token}, extv1beta1.EnvVar{Name: "TASK", Value: "1"})
	createEnvClaim(t, ctx, env, "claim-b", envPool, extv1beta1.EnvVar{Name: "TASK", Value: "2"})
	createEnvClaim(t, ctx, env, "claim-c", envPool)
	want := map[string]map[string]string{
		"claim-a": {"TOKEN": token, "TASK": "1"},
		"claim-b": {"TOKEN": "", "TASK": "2"},
		"claim-c": {"TOKEN": "", "TASK": ""},
	}
	sandboxes := map[string]string{}
	for claim := range want {
		sandboxes[claim] = warmClaim(t, ctx, env, routerURL, claim)
	}
	// The annotation stays on the Sandbox: the Pod (Downward API, get
	// pods) never shows it, nor do the claims' Events.
	pod, err := env.Kube.CoreV1().Pods(env.Namespace).Get(ctx, sandboxes["claim-a"], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pod.Annotations[agentsv1beta1.EnvAnnotation]; ok {
		t.Errorf("Pod %s carries the env annotation", pod.Name)
	}
	events, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range events.Items {
		e := &events.Items[i]
		if strings.Contains(e.Note, token) || strings.Contains(e.Reason, token) {
			t.Errorf("Event %s/%s holds the value: %q", e.Regarding.Name, e.Reason, e.Note)
		}
	}
	for claim, vars := range want {
		for _, path := range []string{"/execute", "/execute/stream"} {
			status, got := routerEnv(t, ctx, routerURL, env.Namespace, sandboxes[claim], path, nil)
			if status != http.StatusOK {
				t.Fatalf("%s %s: status %d", claim, path, status)
			}
			checkEnv(t, claim+" "+path, got, vars)
		}
	}

	for mode, opt := range map[string]sdk.ClientOption{"router": sdk.WithRouterURL(routerURL), "direct": sdk.WithDirectPodIP()} {
		client, err := sdk.NewClient(env.Config, opt, sdk.WithDefaultNamespace(env.Namespace), sdk.WithDefaultReadyTimeout(waitTimeout))
		if err != nil {
			t.Fatal(err)
		}
		for claim, vars := range want {
			sb, err := client.Attach(ctx, claim, sdk.WithWaitForReady())
			if err != nil {
				t.Fatalf("%s Attach %s: %v", mode, claim, err)
			}
			res, err := sb.Run(ctx, "env")
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("%s Run on %s: %v %+v", mode, claim, err, res)
			}
			checkEnv(t, "SDK "+mode+" "+claim, strings.Split(strings.TrimSpace(res.Stdout), "\n"), vars)
			sb.Disconnect()
		}
	}
}

// TestAttackClientInjectsEnv is test plan item 2: a client sending its own
// X-Sandbox-Env, well-formed or not, to a claim without env or to another
// claim's sandbox, neither sets nor replaces a variable: the router strips
// it on every request. Negative control: with the strip removed from the
// router's rewrite, C runs with TOKEN=evil and the malformed copy is
// refused with 400 by the runtime.
func TestAttackClientInjectsEnv(t *testing.T) {
	env, routerURL := warmEnvSetup(t, 2)
	ctx := framework.Context(t, 110*time.Second)
	token := randomValue(t)
	createEnvClaim(t, ctx, env, "claim-a", envPool, extv1beta1.EnvVar{Name: "TOKEN", Value: token})
	createEnvClaim(t, ctx, env, "claim-c", envPool)
	a, c := warmClaim(t, ctx, env, routerURL, "claim-a"), warmClaim(t, ctx, env, routerURL, "claim-c")

	forged := warmenv.EncodeHeader([]warmenv.Var{{Name: "TOKEN", Value: "evil"}, {Name: "LD_PRELOAD", Value: "/tmp/evil.so"}})
	for name, header := range map[string][]string{
		"well-formed": {forged},
		"malformed":   {"TOKEN=evil"},
		"twice":       {forged, forged},
	} {
		for _, path := range []string{"/execute", "/execute/stream"} {
			for sandbox, vars := range map[string]map[string]string{
				c: {"TOKEN": "", "LD_PRELOAD": ""},
				a: {"TOKEN": token, "LD_PRELOAD": ""},
			} {
				status, got := routerEnv(t, ctx, routerURL, env.Namespace, sandbox, path, map[string][]string{"X-Sandbox-Env": header})
				if status != http.StatusOK {
					t.Errorf("%s %s to %s: status %d, want 200 (the client's header stripped)", name, path, sandbox, status)
					continue
				}
				checkEnv(t, name+" "+path+" to "+sandbox, got, vars)
			}
		}
	}
}

// TestWarmEnvColdReasons is test plan item 4: what still forces a cold
// start does so with its WarmStart reason and a ColdStart Event, although
// the pools have Ready members; the policy Disallowed still refuses.
func TestWarmEnvColdReasons(t *testing.T) {
	env := framework.Setup(t)
	ctx := framework.Context(t, 110*time.Second)
	framework.StartControllers(t, env, framework.ControllerSandbox, framework.ControllerSandboxTemplate,
		framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	port := map[string]string{extv1beta1.WarmEnvPortAnnotation: strconv.Itoa(runtimePort)}
	createEnvPool(t, env, "opted", 1, func(tmpl *extv1beta1.SandboxTemplate) {
		tmpl.Annotations = port
		tmpl.Spec.PodTemplate.Spec.Containers = append(tmpl.Spec.PodTemplate.Spec.Containers, corev1.Container{Name: "sidecar", Image: "sidecar:test"})
		tmpl.Spec.VolumeClaimTemplatesPolicy = extv1beta1.VolumeClaimTemplatesPolicyAllowed
	})
	createEnvPool(t, env, "not-opted", 1, nil)
	createEnvPool(t, env, "disallowed", 1, func(tmpl *extv1beta1.SandboxTemplate) {
		tmpl.Annotations = port
		tmpl.Spec.EnvVarsInjectionPolicy = extv1beta1.EnvVarsInjectionPolicyDisallowed
	})
	for _, p := range []string{"opted", "not-opted", "disallowed"} {
		waitPool(t, env, p, 1)
	}

	big := strings.Repeat("x", 9<<10)
	createEnvClaim(t, ctx, env, "sidecar", "opted", extv1beta1.EnvVar{Name: "A", Value: "1", ContainerName: "sidecar"})
	createEnvClaim(t, ctx, env, "too-large", "opted", extv1beta1.EnvVar{Name: "A", Value: big})
	createEnvClaim(t, ctx, env, "not-opted", "not-opted", extv1beta1.EnvVar{Name: "A", Value: "1"})
	vct := &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "volumes"},
		Spec: extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: "opted"},
			VolumeClaimTemplates: []agentsv1beta1.PersistentVolumeClaimTemplate{{EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Create(ctx, vct, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createEnvClaim(t, ctx, env, "refused", "disallowed", extv1beta1.EnvVar{Name: "A", Value: "1"})

	for claim, reason := range map[string]string{
		"sidecar":   extv1beta1.ColdReasonEnvTargetsOtherContainer,
		"too-large": extv1beta1.ColdReasonEnvTooLarge,
		"not-opted": extv1beta1.ColdReasonWarmEnvNotEnabled,
		"volumes":   extv1beta1.ColdReasonVolumesNeedColdStart,
	} {
		sandbox, cond := waitWarmStart(t, ctx, env, claim)
		if cond.Status != metav1.ConditionFalse || cond.Reason != reason {
			t.Errorf("claim %s: WarmStart %s/%s, want False/%s", claim, cond.Status, cond.Reason, reason)
		}
		if strings.Contains(cond.Message, big[:64]) {
			t.Errorf("claim %s: the condition holds a value", claim)
		}
		if sandbox != claim {
			t.Errorf("claim %s bound to %s, want its own cold Sandbox", claim, sandbox)
		}
		waitColdStartEvent(t, ctx, env, claim, reason)
	}

	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		c, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(ctx, "refused", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		r := meta.FindStatusCondition(c.Status.Conditions, "Ready")
		return r != nil && r.Reason == extv1beta1.ClaimReasonEnvVarsRejected && c.Status.SandboxStatus.Name == "", nil
	})
	if err != nil {
		t.Error("claim refused: never Ready=False/EnvVarsInjectionRejected without a Sandbox")
	}
}

// waitColdStartEvent waits for the ColdStart Event on claim naming reason.
func waitColdStartEvent(t *testing.T, ctx context.Context, env *framework.Env, claim, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := env.Kube.EventsV1().Events(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for i := range list.Items {
			e := &list.Items[i]
			if e.Regarding.Name == claim && e.Reason == extv1beta1.ClaimEventColdStart && strings.HasPrefix(e.Note, reason+":") {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("claim %s: no ColdStart Event with reason %s", claim, reason)
	}
}

// TestWarmEnvNeverInLogsOrMetrics is test plan item 3, for the router
// (access log on, -v=6), the runtimes and every metric: a random value
// that commands saw through the router, streamed or not, appears in none
// of them, nor does the header carrying it. (The
// controllers log to the test's own log, which the test cannot read; their
// messages name reasons only, checked by the unit tests.)
func TestWarmEnvNeverInLogsOrMetrics(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true), ktesting.Verbosity(6)))
	parts := warmEnvSetupWith(t, 1, func(o *router.Options) {
		o.Logger = logger
		o.AccessLog = true
	})
	env, routerURL := parts.env, parts.routerURL
	ctx := framework.Context(t, 110*time.Second)
	token := randomValue(t)
	vars := []extv1beta1.EnvVar{{Name: "TOKEN", Value: token}}
	createEnvClaim(t, ctx, env, "claim-a", envPool, vars...)
	sandbox := warmClaim(t, ctx, env, routerURL, "claim-a")
	for _, path := range []string{"/execute", "/execute/stream"} {
		status, got := routerEnv(t, ctx, routerURL, env.Namespace, sandbox, path, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", path, status)
		}
		checkEnv(t, path, got, map[string]string{"TOKEN": token})
	}
	// A client's malformed copy carrying the value is stripped, and
	// logged nowhere either.
	status, _ := routerEnv(t, ctx, routerURL, env.Namespace, sandbox, "/execute", map[string][]string{"X-Sandbox-Env": {"TOKEN=" + token}})
	if status != http.StatusOK {
		t.Errorf("a client's malformed copy through the router: status %d, want 200 (stripped)", status)
	}

	header := warmenv.EncodeHeader([]warmenv.Var{{Name: "TOKEN", Value: token}})
	leaks := func(what, text string) {
		t.Helper()
		if strings.Contains(text, token) || strings.Contains(text, header) {
			t.Errorf("%s holds the value or its header", what)
		}
	}
	routerLog := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	if !strings.Contains(routerLog, sandbox) {
		t.Fatalf("the router's log was not captured (no line names %s)", sandbox)
	}
	leaks("the router's log", routerLog)
	for what, reg := range map[string]*prometheus.Registry{"the router's metrics": parts.router.Registry(), "the controllers' metrics": parts.controllers.Registry} {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", http.NoBody))
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Fatalf("%s: scrape %d", what, rec.Code)
		}
		leaks(what, rec.Body.String())
	}
	parts.backends.mu.Lock()
	var logs []string
	for _, b := range parts.backends.byPod {
		if b.logPath != "" {
			logs = append(logs, b.logPath)
		}
	}
	parts.backends.mu.Unlock()
	if len(logs) == 0 {
		t.Fatal("no runtime log to check")
	}
	for _, p := range logs {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		leaks("runtime log "+p, string(raw))
	}
}
