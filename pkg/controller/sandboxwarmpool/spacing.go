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
	"sync"
	"time"
)

// spacing remembers, per pool, when something last happened, so that it
// happens again only once an interval has passed. It holds one entry per
// pool, dropped with the pool's other state (forgetPool).
type spacing struct {
	interval time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

func newSpacing(interval time.Duration) spacing {
	return spacing{interval: interval, last: map[string]time.Time{}}
}

// remaining is how long until the interval has passed since key's last
// mark: zero when it has, or when key was never marked.
func (s *spacing) remaining(key string, now time.Time) time.Duration {
	if s.interval <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.last[key]
	if !ok {
		return 0
	}
	return max(0, last.Add(s.interval).Sub(now))
}

func (s *spacing) mark(key string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[key] = now
}

func (s *spacing) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.last, key)
}
