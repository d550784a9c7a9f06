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

import "k8s.io/apimachinery/pkg/types"

// UIDSweep expires per-object state keyed by the UID of an object that
// another controller's informer watches: the delete event clears such an
// entry, but an entry written just after that event (a pass that raced
// it), or for an object the informer never showed (created and deleted
// between two lists), would otherwise stay for the life of the process.
//
// A sweep is two-phase so that it never drops an entry written for an
// object the informer has not shown yet (a create that just returned): an
// entry goes only when its object was absent from the cache on two
// consecutive sweeps, an interval apart.
type UIDSweep struct {
	suspects map[types.UID]struct{}
}

// Sweep drops the entries of m that live rejected on this sweep and the
// previous one, and returns how many it dropped. The caller holds
// whatever lock guards m.
func Sweep[V any](s *UIDSweep, m map[types.UID]V, live func(types.UID) bool) int {
	next := map[types.UID]struct{}{}
	dropped := 0
	for uid := range m {
		if live(uid) {
			continue
		}
		if _, ok := s.suspects[uid]; ok {
			delete(m, uid)
			dropped++
			continue
		}
		next[uid] = struct{}{}
	}
	s.suspects = next
	return dropped
}
