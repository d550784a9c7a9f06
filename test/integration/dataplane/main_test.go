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

// Package dataplane proves the data plane end to end on a real API server:
// the SDK claims a warm sandbox and talks to the sandbox-runtime binary
// through the router, which authenticates every request with TokenReview
// and SubjectAccessReview, resolves the sandbox from its Pod cache and
// refuses what it must (no or foreign credentials, forged Pod-IP hints,
// unknown sandboxes) without dialling anything, and never follows a
// sandbox's redirect; and that the SDK rides out the moment the router's
// cache still lags a fresh claim.
//
// kwok runs no containers, so a fixture stands in for the kubelet: for
// every Ready sandbox Pod of the test namespace it starts the runtime binary
// on <podIP>:8888 (kwok gives Pods addresses inside 127.0.0.0/8), or, for
// Pods labelled backend=redirect, a tiny server that answers 302.
package dataplane

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(2)) }
