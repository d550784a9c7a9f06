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

package runtime

import (
	"net/http"

	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// msgInvalidEnv answers any X-Sandbox-Env the runtime cannot use. It is
// constant: the header carries a claim's values (API keys), which must
// never come back in an answer, nor reach a log.
const msgInvalidEnv = "Invalid X-Sandbox-Env header."

// requestEnv decodes the warm claim's environment that the router (or the
// SDK in direct mode) sends with a command (docs/design/warm-env.md). No
// header means none; a header it cannot use, or more than one, is
// answered 400 and the command must not run, since running it without
// the env it was meant to see would be silently wrong. The header is not
// an authorization boundary: whoever reaches the runtime runs
// `env NAME=value cmd` anyway.
func (s *Server) requestEnv(w http.ResponseWriter, r *http.Request) ([]warmenv.Var, bool) {
	values := r.Header.Values(warmenv.Header)
	if len(values) == 0 {
		return nil, true
	}
	if len(values) == 1 {
		if env, err := warmenv.DecodeHeader(values[0]); err == nil {
			return env, true
		}
	}
	// Neither the value nor the decoding error (which names no variable
	// either, but says what is wrong with a secret) is logged.
	s.logger.V(2).Info("Refused a command with an invalid X-Sandbox-Env header", "path", r.URL.Path)
	writeJSON(w, http.StatusBadRequest, detailBody{Detail: msgInvalidEnv})
	return nil, false
}
