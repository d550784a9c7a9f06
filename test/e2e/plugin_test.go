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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/cli"
)

// pluginBinary is kubectl-sandbox, built by TestMain.
var pluginBinary string

// buildPlugin builds cmd/kubectl-sandbox into dir. The tests run the binary
// as users do, with its own flag parsing, environment and exit codes.
func buildPlugin(dir string) (string, error) {
	bin := filepath.Join(dir, "kubectl-sandbox")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-sandbox")
	// go test runs in the package directory, test/e2e.
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kubectl-sandbox: %w\n%s", err, out)
	}
	return bin, nil
}

// plugin runs kubectl-sandbox in one namespace with a router token. With
// E2E_ROUTER_URL unset it finds the router itself (a port-forward to the
// router Service), as it does for users.
type plugin struct {
	t     *testing.T
	ns    string
	token string
}

type pluginResult struct {
	code           int
	stdout, stderr string
}

func (p *plugin) run(args ...string) pluginResult {
	p.t.Helper()
	global := []string{"-n", p.ns}
	if u := os.Getenv("E2E_ROUTER_URL"); u != "" {
		global = append(global, "--router-url", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pluginBinary, append(global, args...)...)
	// The token in the environment, not on the command line.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+os.Getenv("KUBECONFIG"), cli.EnvRouterToken+"="+p.token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := pluginResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		p.t.Fatalf("kubectl sandbox %s: %v", strings.Join(args, " "), err)
	}
	p.t.Logf("kubectl sandbox %s -> %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// must runs a verb that has to succeed and returns its output.
func (p *plugin) must(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	if r.code != cli.ExitOK {
		p.t.Fatalf("kubectl sandbox %s: exit code %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// TestDataPlanePlugin drives a sandbox through the router with the
// kubectl-sandbox binary: claim --wait from a warm pool, exec with the
// command's exit code propagated, cp up and down, files, suspend and
// resume with the copied file still there, release.
func TestDataPlanePlugin(t *testing.T) {
	ns := newNamespace(t)
	createRuntimePool(t, ns, "runtime")
	p := &plugin{t: t, ns: ns, token: routerToken(t, ns, "agent", true)}
	wait := []string{"--wait", "--timeout", waitTimeout.String()}

	var e cli.Entry
	if err := json.Unmarshal([]byte(p.must(append([]string{"claim", "task", "--pool", "runtime", "-o", "json"}, wait...)...)), &e); err != nil {
		t.Fatal(err)
	}
	if e.State != cli.StateReady || e.LaunchType != agentsv1beta1.LaunchTypeWarm || e.Sandbox == "" {
		t.Errorf("claim --wait: %+v, want Ready, warm, with a sandbox", e)
	}
	t.Cleanup(func() { p.run("release", "task") })

	// exec: output, and the command's exit code as the plugin's (6 is
	// none of the plugin's own codes).
	if r := p.run("exec", "task", "--", "sh", "-c", "echo $((6*7)); exit 6"); r.code != 6 || r.stdout != "42\n" {
		t.Errorf("exec: exit code %d, stdout %q; want 6, \"42\\n\"", r.code, r.stdout)
	}
	if r := p.run("exec", "task", "--", "true"); r.code != 0 {
		t.Errorf("exec true: exit code %d", r.code)
	}

	// cp up and down, files.
	dir := t.TempDir()
	local := filepath.Join(dir, "data.bin")
	data := payload()
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p.must("cp", local, "task:notes/")
	if got := p.must("files", "task", "notes", "-o", "name"); got != "data.bin\n" {
		t.Errorf("files notes: %q, want \"data.bin\\n\"", got)
	}
	download := func(to string) {
		t.Helper()
		p.must("cp", "task:notes/data.bin", to)
		got, err := os.ReadFile(to)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes that differ from the %d copied up", filepath.Base(to), len(got), len(data))
		}
	}
	download(filepath.Join(dir, "down.bin"))

	// suspend and resume: the file is on the sandbox's volume.
	p.must(append([]string{"suspend", "task"}, wait...)...)
	p.must(append([]string{"resume", "task"}, wait...)...)
	download(filepath.Join(dir, "after-resume.bin"))

	// release: the claim and its Sandbox go.
	p.must("release", "task")
	waitReleased(t, ns, "task", e.Sandbox)
}
