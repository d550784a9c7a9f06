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

package sandboxwarmpool

import (
	"testing"
	"time"

	"github.com/agentsandbox/agent-sandbox/pkg/controller/controllertest"
)

func TestDocPage(t *testing.T) {
	controllertest.CheckDocPage(t, "../../../docs/controllers/sandboxwarmpool.md", map[string]string{
		"ReasonSuccessfulCreate": ReasonSuccessfulCreate,
		"ReasonFailedCreate":     ReasonFailedCreate,
		"ReasonSuccessfulDelete": ReasonSuccessfulDelete,
		"ReasonFailedDelete":     ReasonFailedDelete,
		"ReasonNotProgressing":   ReasonNotProgressing,
		"ReasonProgressing":      ReasonProgressing,
		"ReasonRefusedMember":    ReasonRefusedMember,
	}, map[string]time.Duration{
		"expectationsRecheck": expectationsRecheck,
		"statusWriteInterval": statusWriteInterval,
		"memberSweepInterval": memberSweepInterval,
		"passInterval":        passInterval,
	})
}
