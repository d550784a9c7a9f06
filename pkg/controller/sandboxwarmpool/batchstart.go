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

import "sync"

// batchStart remembers, per pool, how many Sandboxes its last refill
// created without an error, and starts the next refill's slow start there
// instead of at one. Under a steady stream of claims each refill replaces
// about what the last one did; climbing 1, 2, 4, 8 to create 15 costs four
// sequential round trips of an API server that is busy exactly then (at
// 25 claims/s on the bench, ~100 ms each), while the pool waits for the
// batch to be seen before its next pass. The start follows the claim rate
// both ways: a refill of 3 after one of 20 starts the next at 3.
//
// Slow start's protection is kept: a pool this process has not refilled
// yet starts at one, and any failed create forgets the record, so a pool
// whose creates fail (quota, a webhook, an invalid template) costs one
// failed request per pass as before.
type batchStart struct {
	mu   sync.Mutex
	last map[string]int
}

func newBatchStart() batchStart { return batchStart{last: map[string]int{}} }

// initial is the first batch of key's next refill: at least one.
func (b *batchStart) initial(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(1, b.last[key])
}

// record keeps what a refill of key created: its start for the next one,
// unless a create failed, which starts the next one at one again.
func (b *batchStart) record(key string, created int, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if failed || created <= 0 {
		delete(b.last, key)
		return
	}
	b.last[key] = created
}

func (b *batchStart) forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.last, key)
}
