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

// Command agent-loop-go is the shape of an agent driving a sandbox with
// the Go SDK: claim a sandbox from a warm pool, then loop: choose an
// action from what the last one observed, act in the sandbox (run a
// command, write or read a file), observe; release the claim at the end.
// A fixed policy stands in for the model, so the run is reproducible.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// fibScript is the file the agent writes when it finds it missing.
const fibScript = `import sys

n = int(sys.argv[1])
a, b = 0, 1
for _ in range(n):
    a, b = b, a + b
with open("answer.txt", "w") as f:
    f.write(str(a))
`

// action is one tool call of the agent.
type action struct {
	kind string // "run", "write", "read" or "done"
	arg  string // the command, or the file's path
}

// observation is what the last action returned.
type observation struct {
	action   action
	exitCode int
	stderr   string
	content  string
}

// decide is the policy: given the last observation, the next action. It
// runs the script; if python cannot open it, writes it and runs it again;
// once the script succeeded, reads its answer; then stops.
func decide(last *observation) action {
	run := action{"run", "python3 fib.py 20"}
	switch {
	case last == nil:
		return run
	case last.action.kind == "run" && last.exitCode == 2 && strings.Contains(last.stderr, "No such file"):
		return action{"write", "fib.py"}
	case last.action.kind == "write":
		return run
	case last.action.kind == "run" && last.exitCode == 0:
		return action{"read", "answer.txt"}
	default:
		return action{kind: "done"}
	}
}

func main() {
	pool := flag.String("pool", "python-runtime-pool", "warm pool to claim a sandbox from")
	namespace := flag.String("namespace", "default", "namespace of the pool")
	routerURL := flag.String("router-url", os.Getenv("KUBECTL_SANDBOX_ROUTER_URL"), "the sandbox router")
	token := flag.String("router-token", os.Getenv("KUBECTL_SANDBOX_ROUTER_TOKEN"), "bearer token for the router (audience agent-sandbox-router)")
	flag.Parse()
	if err := run(*pool, *namespace, *routerURL, *token); err != nil {
		log.Fatal(err)
	}
}

func run(pool, namespace, routerURL, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// nil: the kubeconfig of KUBECONFIG or ~/.kube/config (in a Pod, the
	// in-cluster config). The SDK creates the SandboxClaim and watches it.
	client, err := sdk.NewClient(nil, sdk.WithRouterURL(routerURL), sdk.WithBearerToken(token),
		sdk.WithDefaultNamespace(namespace))
	if err != nil {
		return err
	}
	sb, err := client.Create(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Printf("claim %s: sandbox %s (%s start)\n", sb.ClaimName(), sb.SandboxName(), sb.LaunchType())
	// Release the claim whatever happens: its sandbox is deleted with it,
	// and the pool makes a new warm one.
	defer func() {
		if err := sb.Close(context.WithoutCancel(ctx)); err != nil {
			log.Printf("releasing claim %s: %v", sb.ClaimName(), err)
			return
		}
		fmt.Printf("released claim %s\n", sb.ClaimName())
	}()

	var last *observation
	for step := 0; step < 10; step++ {
		a := decide(last)
		obs := &observation{action: a}
		switch a.kind {
		case "done":
			return nil
		case "run":
			res, err := sb.Run(ctx, a.arg)
			if err != nil {
				return err
			}
			obs.exitCode, obs.stderr = res.ExitCode, res.Stderr
			fmt.Printf("run %s: exit %d\n", a.arg, res.ExitCode)
		case "write":
			if err := sb.Write(ctx, a.arg, []byte(fibScript)); err != nil {
				return err
			}
			fmt.Printf("write %s: %d bytes\n", a.arg, len(fibScript))
		case "read":
			b, err := sb.Read(ctx, a.arg)
			if err != nil {
				return err
			}
			obs.content = string(b)
			fmt.Printf("read %s: %s\n", a.arg, b)
		}
		last = obs
	}
	return errors.New("the agent did not finish in 10 steps")
}
