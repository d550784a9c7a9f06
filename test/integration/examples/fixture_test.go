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

package examples

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

const (
	// agentSA is the ServiceAccount whose audience-bound token plays the
	// dev-agent token of make dev.
	agentSA = "dev-agent"
	// waitTimeout bounds every wait: generous, for a loaded machine.
	waitTimeout = 2 * time.Minute
)

// fixture is what the README of an example assumes: the controllers, a
// process node, the router with its shipped authorization, and a token
// allowed through it.
type fixture struct {
	t         *testing.T
	ctx       context.Context
	env       *framework.Env
	routerURL string
	token     string
}

// setup starts the controllers and, with dataPlane, a process node, the
// router and a token for it.
func setup(t *testing.T, dataPlane bool) *fixture {
	t.Helper()
	env := framework.Setup(t)
	framework.StartControllers(t, env, framework.ControllerSandbox, framework.ControllerSandboxTemplate,
		framework.ControllerSandboxWarmPool, framework.ControllerSandboxClaim)
	f := &fixture{t: t, ctx: framework.Context(t, 10*time.Minute), env: env}
	if !dataPlane {
		return f
	}
	// The examples' templates select any process node by label: the
	// tests of this package run one at a time, and each deletes its
	// process node's Node when it ends.
	processnode.StartForTest(t, env.Config, processnode.Options{
		PodCIDRSlot: framework.PodCIDRSlot(), Nodes: []string{"pn-" + env.Namespace[len(env.Namespace)-6:]},
	})
	authz, err := router.NewSubjectAccessReviewAuthorizer(router.TokenReviewOptions{Client: env.Kube, Audiences: []string{cli.DefaultRouterAudience}})
	if err != nil {
		t.Fatal(err)
	}
	f.routerURL, _ = framework.StartRouter(t, env, func(o *router.Options) { o.Authorizer = authz })
	f.token = framework.ServiceAccountToken(t, env, env.Namespace, agentSA, cli.DefaultRouterAudience)
	framework.GrantSandboxProxy(t, env, env.Namespace, agentSA)
	return f
}

// example is the path of a file under docs/examples.
func example(parts ...string) string {
	return filepath.Join(append([]string{framework.RepoRoot(), "docs", "examples"}, parts...)...)
}

// kubectl runs the control plane's kubectl in the test's namespace, from
// the repository root as the READMEs do, and returns its output; it fails
// the test if kubectl fails.
func (f *fixture) kubectl(args ...string) string {
	f.t.Helper()
	all := append([]string{"--kubeconfig", f.env.Kubeconfig, "-n", f.env.Namespace}, args...)
	cmd := exec.CommandContext(f.ctx, f.env.Binaries.Kubectl, all...)
	cmd.Dir = framework.RepoRoot()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	f.t.Logf("kubectl %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), out.String(), errOut.String())
	if err != nil {
		f.t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// sandbox runs kubectl sandbox in-process, from the repository root, with
// what make dev puts in the environment passed as flags: the router's URL
// and the agent's token.
func (f *fixture) sandbox(args ...string) framework.CLIResult {
	f.t.Helper()
	all := append([]string{"--kubeconfig", f.env.Kubeconfig, "-n", f.env.Namespace,
		"--router-url", f.routerURL, "--router-token", f.token}, args...)
	return framework.RunSandboxCLI(f.ctx, f.t, "", all...)
}

// waitPoolReady runs the READMEs' kubectl wait for a pool's ready count.
func (f *fixture) waitPoolReady(pool string, ready int) {
	f.t.Helper()
	out := f.kubectl("wait", "swp/"+pool, "--for=jsonpath={.status.readyReplicas}="+strconv.Itoa(ready), "--timeout="+waitTimeout.String())
	if want := "sandboxwarmpool.extensions.agents.x-k8s.io/" + pool + " condition met\n"; out != want {
		f.t.Errorf("kubectl wait printed %q, want %q", out, want)
	}
}
