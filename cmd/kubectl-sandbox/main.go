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

// Command kubectl-sandbox is the kubectl plugin for agent sandboxes: on the
// PATH, kubectl runs it as "kubectl sandbox". Wiring only; the verbs live
// in pkg/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
)

func main() {
	// Ctrl-C cancels the verb's context: an exec's stream is closed (the
	// runtime then kills the command), a wait ends.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	code := cli.Run(ctx, cli.NewOptions(streams), os.Args[1:])
	stop()
	os.Exit(code)
}
