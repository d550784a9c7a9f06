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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestAgentLoopGo runs docs/examples/agent-loop-go/README.md: build the
// program, run it against the python-runtime pool, and check each step
// it prints and that its claim is gone afterwards.
func TestAgentLoopGo(t *testing.T) {
	f := setup(t, true)
	f.kubectl("apply", "-f", example("python-runtime", "python-runtime.yaml"))
	f.waitPoolReady("python-runtime-pool", 2)

	bin := filepath.Join(t.TempDir(), "agent-loop-go")
	build := exec.CommandContext(f.ctx, "go", "build", "-o", bin, "./docs/examples/agent-loop-go")
	build.Dir = framework.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.CommandContext(f.ctx, bin, "-namespace", f.env.Namespace)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+f.env.Kubeconfig,
		"KUBECTL_SANDBOX_ROUTER_URL="+f.routerURL, "KUBECTL_SANDBOX_ROUTER_TOKEN="+f.token)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("agent-loop-go\nstdout: %s\nstderr: %s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("agent-loop-go: %v", err)
	}
	want := regexp.MustCompile(`^claim (sandbox-claim-[a-z0-9]{5}): sandbox python-runtime-pool-[a-z0-9]{5} \(warm start\)
run python3 fib\.py 20: exit 2
write fib\.py: 139 bytes
run python3 fib\.py 20: exit 0
read answer\.txt: 6765
released claim (sandbox-claim-[a-z0-9]{5})
$`)
	m := want.FindStringSubmatch(out.String())
	if len(m) != 3 || m[1] != m[2] {
		t.Fatalf("agent-loop-go printed %q, want the README's steps", out.String())
	}
	claims, err := f.env.Agents.ExtensionsV1beta1().SandboxClaims(f.env.Namespace).List(f.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Items) != 0 {
		t.Errorf("claims left after the run: %d, want 0 (released)", len(claims.Items))
	}
}
