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

// Package idle proves idle auto-suspend on a real API server
// (docs/design/idle.md, test plan items 1, 2, 3 and 7b): the routers record
// activity in the last-activity annotation at most once per idle window,
// and the Sandbox controller suspends a Sandbox W + grace after it, never
// before. The routers' trackers and the Sandbox controller run on one fake
// clock that the tests step; "not before" is checked after a sync the test
// caused has run, never by sleeping.
//
// kwok runs no containers, so a fixture stands in for the kubelet: for
// every Ready sandbox Pod it serves HTTP on <podIP>:8888 (kwok gives Pods
// addresses inside 127.0.0.0/8).
package idle

import (
	"testing"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }
