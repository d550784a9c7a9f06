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
	"fmt"
	"strings"
)

// FillRound is one ReplicaSet fill and the pool fill right after it. On a
// shared 2-core machine one pair's ratio swung from 1.1 to 2.4 between
// runs of the same code, so the fill rows take the median of several.
type FillRound struct {
	RSSeconds   float64 `json:"rsSeconds"`
	PoolSeconds float64 `json:"poolSeconds"`
}

// fillRatio is the pool's fill time over the ReplicaSet's: the median of
// the rounds' ratios when there were several, else the one pair's; what
// names the figure for a row's text. ok is false without both fills.
func (r *Report) fillRatio() (v float64, what string, ok bool) {
	if r.Pool == nil || r.RS == nil || r.RS.FillSeconds <= 0 {
		return 0, "", false
	}
	one := fmt.Sprintf("pool %d: %.2fs, RS %d: %.2fs", r.Pool.Size, r.Pool.FillSeconds, r.RS.Size, r.RS.FillSeconds)
	var ratios []float64
	for _, fr := range r.FillRounds {
		if fr.RSSeconds > 0 {
			ratios = append(ratios, fr.PoolSeconds/fr.RSSeconds)
		}
	}
	if len(ratios) < 2 {
		return r.Pool.FillSeconds / r.RS.FillSeconds, one, true
	}
	parts := make([]string, len(ratios))
	for i, x := range ratios {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return median(ratios), fmt.Sprintf("median of %d alternating rounds: %s; the first %s", len(ratios), strings.Join(parts, ", "), one), true
}
