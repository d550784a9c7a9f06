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

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// ExampleClient_Attach hands a sandbox from one process to another: the first
// disconnects (the claim stays), the second attaches by claim name.
func ExampleClient_Attach() {
	ctx := context.Background()
	client, err := sdk.NewClient(nil, sdk.WithDirectPodIP())
	if err != nil {
		log.Fatal(err)
	}
	sb, err := client.Attach(ctx, "sandbox-claim-x7k2p", sdk.WithNamespace("agents"))
	switch {
	case errors.Is(err, sdk.ErrSandboxDeleted):
		log.Fatal("the claim or its sandbox is gone")
	case errors.Is(err, sdk.ErrNotReady):
		log.Fatal("the sandbox is not ready yet; retry or use sdk.WithWaitForReady()")
	case err != nil:
		log.Fatal(err)
	}
	ok, err := sb.Exists(ctx, "results.json")
	if err != nil {
		var herr *sdk.HTTPError
		if errors.As(err, &herr) {
			log.Fatalf("runtime answered %d: %s", herr.StatusCode, herr.Body)
		}
		log.Fatal(err)
	}
	fmt.Println("results ready:", ok)
	sb.Disconnect() // keep the claim for the next process
}
