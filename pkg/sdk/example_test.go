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

package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// Example claims a sandbox from a warm pool through the router, runs and
// streams commands, moves a file in and out, and deletes the claim. It needs
// a cluster, so it has no Output comment and only compiles under go test.
func Example() {
	if err := runExample(); err != nil {
		log.Fatal(err)
	}
}

// runExample returns its errors rather than exiting, so that the deferred
// deletion of the claim runs (log.Fatal would skip it).
func runExample() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	client, err := sdk.NewClient(cfg,
		sdk.WithRouterURL("http://sandbox-router-svc.default.svc.cluster.local:8080"),
		// Read per request, so a rotated projected token is picked up.
		sdk.WithTokenSource(func(context.Context) (string, error) {
			b, err := os.ReadFile("/var/run/secrets/tokens/sandbox-router")
			return strings.TrimSpace(string(b)), err
		}),
	)
	if err != nil {
		return err
	}

	sb, err := client.Create(ctx, "python-pool", sdk.WithNamespace("default"), sdk.WithTTL(time.Hour))
	if err != nil {
		return err // the claim was already deleted
	}
	defer func() {
		// A fresh context: the claim must go even if ctx has ended.
		if err := sb.Close(context.WithoutCancel(ctx)); err != nil {
			log.Print(err)
		}
	}()

	res, err := sb.Run(ctx, "echo hello")
	if err != nil {
		return err
	}
	fmt.Printf("exit %d: %s", res.ExitCode, res.Stdout)

	cs, err := sb.Stream(ctx, "python3 -u -c 'import time\nfor i in range(3): print(i); time.sleep(1)'",
		sdk.WithCommandTimeout(time.Minute))
	if err != nil {
		return err
	}
	for cs.Next() {
		c := cs.Chunk()
		fmt.Printf("[%s] %s", c.Source, c.Data)
	}
	if err := cs.Err(); errors.Is(err, sdk.ErrExecFailed) {
		log.Printf("the runtime could not run the command: %v", err)
	} else if err != nil {
		return err
	}
	cs.Close()
	fmt.Println("stream exit code", cs.ExitCode())

	if err := sb.Write(ctx, "data/input.txt", []byte("42\n")); err != nil {
		return err
	}
	b, err := sb.Read(ctx, "data/input.txt")
	if err != nil {
		return err
	}
	fmt.Printf("read back %q\n", b)

	entries, err := sb.List(ctx, "data")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fmt.Println(e.Type, e.Name, e.Size, e.ModTime.Format(time.RFC3339))
	}
	return nil
}
