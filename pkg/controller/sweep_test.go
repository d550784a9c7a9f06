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

package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// An entry goes only once its object was absent on two consecutive
// sweeps: one absence may be a create the informer has not shown yet.
func TestSweepTwoPhase(t *testing.T) {
	m := map[types.UID]int{"a": 1, "b": 2, "c": 3}
	var s UIDSweep
	steps := []struct {
		live    sets.Set[types.UID]
		dropped int
		left    []types.UID
	}{
		{live: sets.New[types.UID]("a"), dropped: 0, left: []types.UID{"a", "b", "c"}},
		// b showed up meanwhile; c was absent twice.
		{live: sets.New[types.UID]("a", "b"), dropped: 1, left: []types.UID{"a", "b"}},
		{live: sets.New[types.UID](), dropped: 0, left: []types.UID{"a", "b"}},
		{live: sets.New[types.UID](), dropped: 2, left: []types.UID{}},
	}
	for i, step := range steps {
		if got := Sweep(&s, m, step.live.Has); got != step.dropped {
			t.Errorf("sweep %d dropped %d, want %d", i+1, got, step.dropped)
		}
		if diff := cmp.Diff(step.left, sets.List(sets.KeySet(m))); diff != "" {
			t.Errorf("after sweep %d (-want,+got):\n%s", i+1, diff)
		}
	}
}
