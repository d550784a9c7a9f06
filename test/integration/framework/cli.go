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

package framework

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
)

// CLIResult is what one kubectl sandbox command did.
type CLIResult struct {
	Code           int
	Stdout, Stderr string
}

// RunSandboxCLI runs kubectl-sandbox in-process, as a user's shell would
// run the plugin, with stdin as its input. args carry the global flags
// (kubeconfig, namespace, router) as well as the verb, so each suite says
// how it reaches the router. Everything printed goes to the test log.
func RunSandboxCLI(ctx context.Context, t testing.TB, stdin string, args ...string) CLIResult {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	code := cli.Run(ctx, cli.NewOptions(streams), args)
	t.Logf("kubectl sandbox %s -> %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errOut.String())
	return CLIResult{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}
