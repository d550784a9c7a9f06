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

package controllertest

import (
	"strings"
	"testing"
	"time"
)

func TestDurationInPage(t *testing.T) {
	page := strings.Split(`Intro.

| Situation | Requeue |
|---|---|
| refused | 1 min (`+"`refusedRequeue`"+`) |
| waiting | 500 ms (`+"`warmWaitStep`"+`) |

A claim waits `+"`bindingLag`"+`, that is
30 s, and then looks again.

Named `+"`orphan`"+` without a value.`, "\n")
	for name, tc := range map[string]struct {
		d     time.Duration
		wrong bool
	}{
		"refusedRequeue": {d: time.Minute},
		"warmWaitStep":   {d: 500 * time.Millisecond},
		"bindingLag":     {d: 30 * time.Second},
		// The same row gives 1 min, not 1 s or 11 min.
		"refusedRequeue ":  {d: time.Second, wrong: true},
		"refusedRequeue  ": {d: 11 * time.Minute, wrong: true},
		// The value must be in the constant's own row, not another's.
		"warmWaitStep ": {d: time.Minute, wrong: true},
		"orphan":        {d: time.Hour, wrong: true},
		"absent":        {d: time.Hour, wrong: true},
	} {
		msg := durationInPage(page, strings.TrimSpace(name), tc.d)
		if (msg != "") != tc.wrong {
			t.Errorf("%s = %s: got %q, want a complaint: %v", strings.TrimSpace(name), tc.d, msg, tc.wrong)
		}
	}
}
