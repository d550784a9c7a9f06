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

package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/cli"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

const (
	pool     = "runtime-pool"
	agentSA  = "agent"
	audience = cli.DefaultRouterAudience
	// waitTimeout bounds every wait: generous, for a loaded machine.
	waitTimeout = 90 * time.Second
)

// plugin runs kubectl-sandbox in-process with the test's kubeconfig,
// namespace and router.
type plugin struct {
	t          *testing.T
	ctx        context.Context
	kubeconfig string
	namespace  string
	routerURL  string
}

// runIn runs a verb with stdin as its input, reaching the router as the
// agent's ServiceAccount.
func (p *plugin) runIn(stdin string, args ...string) framework.CLIResult {
	p.t.Helper()
	all := append([]string{"--kubeconfig", p.kubeconfig, "-n", p.namespace,
		"--router-url", p.routerURL, "--router-service-account", agentSA}, args...)
	return framework.RunSandboxCLI(p.ctx, p.t, stdin, all...)
}

func (p *plugin) run(args ...string) framework.CLIResult {
	p.t.Helper()
	return p.runIn("", args...)
}

// must runs a verb that has to succeed.
func (p *plugin) must(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	if r.Code != cli.ExitOK {
		p.t.Fatalf("kubectl sandbox %s: exit code %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return r.Stdout
}

func (p *plugin) entry(claim string) cli.Entry {
	p.t.Helper()
	var list struct {
		Items []cli.Entry `json:"items"`
	}
	if err := json.Unmarshal([]byte(p.must("ls", "-o", "json")), &list); err != nil {
		p.t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Claim == claim {
			return list.Items[i]
		}
	}
	p.t.Fatalf("claim %s not listed: %+v", claim, list.Items)
	return cli.Entry{}
}

// runtimePool creates a template whose Pods run on the process node, and a
// warm pool of one, and waits until its member is Ready.
func runtimePool(t *testing.T, env *framework.Env, node string) {
	t.Helper()
	ctx := framework.Context(t, waitTimeout)
	spec := corev1.PodSpec{Containers: []corev1.Container{{
		Name: "runtime", Image: "ghcr.io/agentsandbox/sandbox-runtime:latest",
		Ports: []corev1.ContainerPort{{ContainerPort: 8888}},
	}}}
	processnode.ScheduleOn(&spec, node)
	tmpl := &extensionsv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "runtime", Namespace: env.Namespace},
		Spec: extensionsv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: spec},
		}},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxTemplates(env.Namespace).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wp := &extensionsv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: pool, Namespace: env.Namespace},
		Spec: extensionsv1beta1.SandboxWarmPoolSpec{
			Replicas:    ptr.To[int32](1),
			TemplateRef: extensionsv1beta1.SandboxTemplateRef{Name: tmpl.Name},
		},
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Create(ctx, wp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := env.Agents.ExtensionsV1beta1().SandboxWarmPools(env.Namespace).Get(ctx, pool, metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 1, nil
	})
	if err != nil {
		t.Fatalf("warm pool never had a Ready member: %v", err)
	}
}

// TestEveryVerb claims a warm sandbox with the plugin, lists it, runs
// commands in it, copies files both ways and lists them, suspends and
// resumes it and releases it, checking output and exit codes throughout.
func TestEveryVerb(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandbox, framework.ControllerSandboxTemplate,
		framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	node := "cli-" + env.Namespace[len(env.Namespace)-6:]
	processnode.StartForTest(t, env.Config, processnode.Options{PodCIDRSlot: framework.PodCIDRSlot(), Nodes: []string{node}})
	authz, err := router.NewSubjectAccessReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube, Audiences: []string{audience}})
	if err != nil {
		t.Fatal(err)
	}
	routerURL, _ := framework.StartRouter(t, env, func(o *router.Options) { o.Authorizer = authz })
	// The ServiceAccount the plugin mints router tokens for, allowed to
	// get sandboxes/proxy in the namespace.
	framework.ServiceAccountToken(t, env, env.Namespace, agentSA, audience)
	framework.GrantSandboxProxy(t, env, env.Namespace, agentSA)
	runtimePool(t, env, node)

	p := &plugin{t: t, ctx: framework.Context(t, 5*time.Minute), kubeconfig: env.Kubeconfig, namespace: env.Namespace, routerURL: routerURL}

	// claim --wait: the pool's member, warm.
	out := p.must("claim", "task", "--pool", pool, "--wait", "--timeout", waitTimeout.String(), "--label", "team=ml")
	if !strings.HasPrefix(out, "sandboxclaim.extensions.agents.x-k8s.io/task ready: sandbox "+pool+"-") || !strings.Contains(out, "(warm start, ") {
		t.Errorf("claim --wait printed %q", out)
	}
	e := p.entry("task")
	if e.State != cli.StateReady || e.LaunchType != agentsv1beta1.LaunchTypeWarm || e.Node != node || len(e.PodIPs) == 0 || e.Pool != pool {
		t.Errorf("ls entry %+v: want Ready, warm, on %s, with an IP", e, node)
	}
	if got := p.must("ls", "-l", "team=ml", "-o", "name"); got != "sandboxclaim.extensions.agents.x-k8s.io/task\n" {
		t.Errorf("ls -l team=ml -o name: %q", got)
	}

	// exec: output, exit codes, stdin, arguments verbatim.
	if r := p.run("exec", "task", "--", "sh", "-c", "echo $((6*7)); echo warn >&2"); r.Code != 0 || r.Stdout != "42\n" || r.Stderr != "warn\n" {
		t.Errorf("exec sh -c: %+v", r)
	}
	if r := p.run("exec", "task", "--", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exec exit 7: exit code %d", r.Code)
	}
	if r := p.runIn("piped\n", "exec", "task", "-i", "--", "cat"); r.Code != 0 || r.Stdout != "piped\n" {
		t.Errorf("exec -i cat: %+v", r)
	}
	if r := p.run("exec", "task", "--", "printf", "<%s>", "a b", "$HOME", "it's"); r.Stdout != "<a b><$HOME><it's>" {
		t.Errorf("exec printf: %+v", r)
	}
	if r := p.run("exec", "task", "--timeout", "1s", "--", "sleep", "30"); r.Code != cli.ExitTimeout {
		t.Errorf("exec --timeout: %+v", r)
	}

	// cp both ways, files.
	local := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(local, []byte("hello from the laptop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.must("cp", local, "task:notes/")
	if got := p.must("files", "task", "notes", "-o", "name"); got != "hello.txt\n" {
		t.Errorf("files notes: %q", got)
	}
	if got := p.must("cp", "task:notes/hello.txt", "-"); got != "hello from the laptop\n" {
		t.Errorf("cp back: %q", got)
	}
	if r := p.run("exec", "task", "--", "cat", "notes/hello.txt"); r.Stdout != "hello from the laptop\n" {
		t.Errorf("the uploaded file in the sandbox: %+v", r)
	}

	// Attack: code in the sandbox names a file with terminal control
	// sequences (retitle the terminal, clear the screen). Listing it must
	// show the name escaped in every format, never raw.
	if r := p.run("exec", "task", "--", "sh", "-c", `touch "notes/$(printf 'x\033]0;pwned\007\033[2J')"`); r.Code != 0 {
		t.Fatalf("creating the hostile file name: %+v", r)
	}
	for _, format := range []string{"table", "name", "json", "yaml"} {
		args := []string{"files", "task", "notes"}
		if format != "table" {
			args = append(args, "-o", format)
		}
		out := p.must(args...)
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("files -o %s prints the sandbox's control characters raw: %q", format, out)
		}
		if (format == "table" || format == "name") && !strings.Contains(out, `"x\x1b]0;pwned\a\x1b[2J"`) {
			t.Errorf("files -o %s does not show the hostile name quoted: %q", format, out)
		}
	}
	p.must("exec", "task", "--", "sh", "-c", "rm notes/x*")

	// A token the router does not accept: exit 1 with the hint.
	bad := p.run("exec", "task", "--router-token", "not-a-token", "--", "true")
	if bad.Code != cli.ExitFailure || !strings.Contains(bad.Stderr, "hint: the router needs a bearer token") {
		t.Errorf("exec with a bad token: %+v", bad)
	}

	// suspend / resume.
	p.must("suspend", "task", "--wait", "--timeout", waitTimeout.String())
	if e := p.entry("task"); e.State != cli.StateSuspended || len(e.PodIPs) != 0 {
		t.Errorf("after suspend: %+v", e)
	}
	if r := p.run("exec", "task", "--", "true"); r.Code != cli.ExitFailure || !strings.Contains(r.Stderr, "not Ready") {
		t.Errorf("exec in a suspended sandbox: %+v", r)
	}
	p.must("resume", "task", "--wait", "--timeout", waitTimeout.String())
	if e := p.entry("task"); e.State != cli.StateReady {
		t.Errorf("after resume: %+v", e)
	}
	if r := p.run("exec", "task", "--", "echo", "back"); r.Code != 0 || r.Stdout != "back\n" {
		t.Errorf("exec after resume: %+v", r)
	}

	// release, then the claim is gone for every verb.
	if got := p.must("release", "task"); got != "sandboxclaim.extensions.agents.x-k8s.io/task released\n" {
		t.Errorf("release: %q", got)
	}
	for _, args := range [][]string{{"exec", "task", "--", "true"}, {"release", "task"}, {"suspend", "task"}, {"files", "task"}} {
		if r := p.run(args...); r.Code != cli.ExitNotFound {
			t.Errorf("%v after release: %+v, want exit %d", args, r, cli.ExitNotFound)
		}
	}
}

// TestClaimWaitTimeout: a claim that can never be served (no such pool)
// times out with exit 4 and leaves no claim behind; without --wait the
// claim stays and ls shows why it is Pending.
func TestClaimWaitTimeout(t *testing.T) {
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandboxClaim)
	p := &plugin{t: t, ctx: framework.Context(t, time.Minute), kubeconfig: env.Kubeconfig, namespace: env.Namespace, routerURL: "http://127.0.0.1:1"}

	if r := p.run("claim", "doomed", "--pool", "no-such-pool", "--wait", "--timeout", "3s"); r.Code != cli.ExitTimeout {
		t.Errorf("claim --wait on a missing pool: %+v, want exit %d", r, cli.ExitTimeout)
	}
	if _, err := env.Agents.ExtensionsV1beta1().SandboxClaims(env.Namespace).Get(p.ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("claim after a failed --wait: %v, want NotFound", err)
	}

	if got := p.must("claim", "--pool", "no-such-pool", "-o", "name"); !strings.HasPrefix(got, "sandboxclaim.extensions.agents.x-k8s.io/sandbox-claim-") {
		t.Errorf("claim -o name: %q", got)
	}
	err := wait.PollUntilContextTimeout(p.ctx, 100*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		var list struct {
			Items []cli.Entry `json:"items"`
		}
		if err := json.Unmarshal([]byte(p.must("ls", "-o", "json")), &list); err != nil {
			return false, err
		}
		return len(list.Items) == 1 && list.Items[0].State == cli.StatePending && list.Items[0].Reason == "WarmPoolNotFound", nil
	})
	if err != nil {
		t.Errorf("ls never showed the claim Pending with reason WarmPoolNotFound: %v", err)
	}
}
