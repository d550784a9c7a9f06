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

package sandboxclaim

import (
	"time"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// inheritedKnobs are the wake and idle opt-ins (docs/design/idle.md) a
// claim's Sandbox takes from its pool or template. They are read from the
// Sandbox alone (by the router and the Sandbox controller), so the claim
// controller puts them there in the write it sends anyway: the takeover
// patch or the cold create, never a write of its own.
var inheritedKnobs = []string{
	agentsv1beta1.WakeOnRequestAnnotation,
	agentsv1beta1.IdleTimeoutAnnotation,
}

// knobs returns the values of inheritedKnobs for a Sandbox of pool and
// tmpl: the pool's annotation wins over the template's, so one template
// can serve pools that differ only in how they idle. pool may be nil.
func knobs(pool *extv1beta1.SandboxWarmPool, tmpl *extv1beta1.SandboxTemplate) map[string]string {
	var out map[string]string
	for _, k := range inheritedKnobs {
		v, ok := "", false
		if pool != nil {
			v, ok = pool.Annotations[k]
		}
		if !ok && tmpl != nil {
			v, ok = tmpl.Annotations[k]
		}
		if ok {
			if out == nil {
				out = make(map[string]string, len(inheritedKnobs))
			}
			out[k] = v
		}
	}
	return out
}

// knobsPatch is the annotations part of a takeover merge patch: the
// inherited knobs set as pool and template say, and removed from a member
// that carries one they do not (a member made by hand, or before the pool
// changed). When the Sandbox is opted into idle suspend, last-activity is
// set to the takeover time: a member may have been Ready for hours in the
// pool, and the Sandbox controller would otherwise count its idle window
// from that Ready transition and suspend it at once.
func knobsPatch(annotations map[string]any, want, have map[string]string, now time.Time) {
	for _, k := range inheritedKnobs {
		v, wanted := want[k]
		cur, had := have[k]
		switch {
		case wanted && (!had || cur != v):
			annotations[k] = v
		case !wanted && had:
			annotations[k] = nil
		}
	}
	if _, ok := want[agentsv1beta1.IdleTimeoutAnnotation]; ok {
		annotations[agentsv1beta1.LastActivityAnnotation] = agentsv1beta1.FormatActivityTime(now)
	}
}
