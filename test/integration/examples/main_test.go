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

// Package examples runs each example of docs/examples as its README says,
// on a real API server with the four controllers, and checks the outcome
// the README promises. Where a process must answer (the sandbox runtime,
// a server started in a sandbox), the sandboxes run on a process node
// (test/processnode) and are reached through an in-process router in its
// shipped subjectaccessreview mode. kubectl commands of a README run the
// control plane's kubectl; kubectl sandbox runs in-process.
package examples

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// One kwok node besides the process nodes: WithNodes also starts the
// scheduler and kube-controller-manager, whose HPA controller the
// warm-pool-hpa example needs, and whose garbage collector removes the
// sandboxes of released claims.
func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }
