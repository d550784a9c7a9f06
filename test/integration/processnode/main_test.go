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

// Package processnode proves the development process node
// (test/processnode) against a real API server and scheduler: a Sandbox
// whose Pod selects the process node becomes Ready with a loopback IP on
// which the sandbox runtime answers; suspending, resuming, deleting and a
// crash of the runtime are followed; and a restarted process node adopts
// the runtimes of live Pods and kills every other, leaking no process.
package processnode

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// One kwok node brings kube-controller-manager (garbage collection, the
// default ServiceAccounts) and the scheduler, which the process node
// relies on.
func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }
