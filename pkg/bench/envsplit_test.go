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

package bench

import (
	"strings"
	"testing"
	"time"
)

// Claims are split by kind: cold ones count but add no latency, and the
// critical paths go with their kind; a run without env claims has none.
func TestEnvSplit(t *testing.T) {
	var none envSplitter
	none.add(claimSample{warm: true, latency: time.Millisecond}, nil)
	if none.summary() != nil {
		t.Fatal("a run without env claims has a split")
	}

	var s envSplitter
	s.add(claimSample{warm: true, latency: 10 * time.Millisecond}, &ClaimPath{Claim: 1, Sandbox: 1})
	s.add(claimSample{warm: true, env: true, latency: 30 * time.Millisecond}, &ClaimPath{Claim: 1, Sandbox: 1, Pod: 1})
	s.add(claimSample{env: true, latency: time.Second}, nil)
	sp := s.summary()
	if sp.Plain.Ready != 1 || sp.Plain.Cold != 0 || sp.Env.Ready != 2 || sp.Env.Cold != 1 {
		t.Errorf("counts %+v %+v", sp.Plain, sp.Env)
	}
	if sp.Plain.WarmLatency.P50Ms != 10 || sp.Env.WarmLatency.P50Ms != 30 || sp.Env.WarmLatency.N != 1 {
		t.Errorf("latencies plain %+v env %+v", sp.Plain.WarmLatency, sp.Env.WarmLatency)
	}
	if sp.Plain.CriticalPath.Mean != 2 || sp.Env.CriticalPath.Mean != 3 {
		t.Errorf("critical paths plain %+v env %+v", sp.Plain.CriticalPath, sp.Env.CriticalPath)
	}

	var b strings.Builder
	warmEnvSection(&b, []*SteadyResult{{Rate: 10, ClaimStats: ClaimStats{EnvSplit: sp}}})
	for _, want := range []string{"| 10/s | plain | 1 | 0 | 10.0 |", "| 10/s | with env | 2 | 1 | 30.0 |", "env/plain: warm p50 3.00", "critical path mean 1.50"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
