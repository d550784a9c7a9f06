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

// Package cli drives every kubectl-sandbox verb against a real API server
// with the four controllers, the process node running the sandbox runtime
// as local processes, and the router in its shipped subjectaccessreview
// mode with an audience-bound ServiceAccount token that the plugin mints
// itself (--router-service-account).
//
// The router is reached with --router-url: the local control plane has no
// kubelet to port-forward through, so the plugin's port-forward to the
// router Service is covered by unit tests of its discovery only.
package cli

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// One kwok node besides the process node: WithNodes also starts the
// scheduler and kube-controller-manager (garbage collection of released
// claims' sandboxes).
func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }
