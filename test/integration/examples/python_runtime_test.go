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
	"regexp"
	"testing"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
)

// TestPythonRuntime runs docs/examples/python-runtime/README.md: apply
// the template and pool, wait for two ready, claim warm, run Python
// inline and from a copied script, see a failing script's stderr and exit
// code, release, and see the pool ready with two again.
func TestPythonRuntime(t *testing.T) {
	f := setup(t, true)
	manifest := example("python-runtime", "python-runtime.yaml")

	out := f.kubectl("apply", "-f", manifest)
	want := "sandboxtemplate.extensions.agents.x-k8s.io/python-runtime created\n" +
		"sandboxwarmpool.extensions.agents.x-k8s.io/python-runtime-pool created\n"
	if out != want {
		t.Errorf("kubectl apply printed %q, want %q", out, want)
	}
	f.waitPoolReady("python-runtime-pool", 2)

	claimed := regexp.MustCompile(`^sandboxclaim\.extensions\.agents\.x-k8s\.io/py ready: sandbox python-runtime-pool-[a-z0-9]{5} \(warm start, [0-9.]+s\)\n$`)
	if r := f.sandbox("claim", "py", "--pool", "python-runtime-pool", "--wait"); r.Code != cli.ExitOK || !claimed.MatchString(r.Stdout) {
		t.Fatalf("claim --wait: %+v", r)
	}
	if r := f.sandbox("exec", "py", "--", "python3", "-c", "print(sum(range(10)))"); r.Code != 0 || r.Stdout != "45\n" {
		t.Errorf("exec python3 -c: %+v, want stdout 45", r)
	}
	if r := f.sandbox("cp", example("python-runtime", "primes.py"), "py:primes.py"); r.Code != cli.ExitOK || r.Stdout != "" {
		t.Fatalf("cp primes.py: %+v", r)
	}
	if r := f.sandbox("exec", "py", "--", "python3", "primes.py", "30"); r.Code != 0 || r.Stdout != "2 3 5 7 11 13 17 19 23 29\n" {
		t.Errorf("exec python3 primes.py 30: %+v", r)
	}
	if r := f.sandbox("exec", "py", "--", "python3", "-c", `import sys; sys.exit("bad input")`); r.Code != 1 || r.Stdout != "" || r.Stderr != "bad input\n" {
		t.Errorf("exec sys.exit: %+v, want exit 1 and stderr 'bad input'", r)
	}
	if r := f.sandbox("release", "py"); r.Code != cli.ExitOK || r.Stdout != "sandboxclaim.extensions.agents.x-k8s.io/py released\n" {
		t.Errorf("release: %+v", r)
	}
	f.waitPoolReady("python-runtime-pool", 2)
}
