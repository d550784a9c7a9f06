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

// Package leaderelection proves pkg/leaderelection on a real API server:
// one leader at a time among candidates, a hand-over at once on release,
// a leader that finds another holder on record stops without writing over it,
// a holder cut off from the API server stops leading before another
// starts, and replicas running client-go's leaderelection (older
// releases, during a rolling upgrade) and this one take turns on the same
// Lease.
package leaderelection

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
