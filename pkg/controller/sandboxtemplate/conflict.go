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

package sandboxtemplate

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// conflicts remembers which policy conflicts were reported, so a template
// whose policy name someone else holds gets one Warning Event per conflict
// episode rather than one per pass: the template has no status to carry a
// condition (the API gives SandboxTemplate none), and every edit of the
// template or of the foreign policy wakes it again.
//
// An episode is one template (by UID) facing one foreign policy (by UID):
// a policy deleted and made again by its owner, or a template deleted and
// made again under the same name, starts a new one.
type conflicts struct {
	mu       sync.Mutex
	reported map[cache.ObjectName]conflict
}

type conflict struct{ template, policy types.UID }

// report records the conflict of the template at key and says whether it
// is a new episode, to be reported.
func (c *conflicts) report(key cache.ObjectName, cf conflict) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reported[key] == cf {
		return false
	}
	if c.reported == nil {
		c.reported = map[cache.ObjectName]conflict{}
	}
	c.reported[key] = cf
	return true
}

// clear ends the episode of the template at key: the conflict is gone, or
// the template is.
func (c *conflicts) clear(key cache.ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reported, key)
}

// len counts the templates in conflict, for tests.
func (c *conflicts) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reported)
}
