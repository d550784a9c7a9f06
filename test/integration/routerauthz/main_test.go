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

// Package routerauthz attacks the router's authorization on a real API
// server: the real router, in process, authenticates with real TokenReviews
// and SubjectAccessReviews of real ServiceAccount tokens, and reaches real
// Sandboxes (run by the Sandbox controller on kwok nodes) whose Pods get
// loopback addresses, where each test serves a tiny backend.
package routerauthz

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }
