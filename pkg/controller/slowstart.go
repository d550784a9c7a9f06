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
	"context"
	"sync"
)

// SlowStartInitialBatchSize is the size of the first batch.
const SlowStartInitialBatchSize = 1

// SlowStartBatch calls fn count times in batches of 1, 2, 4, 8, ... that
// each run in parallel. A failing call usually means the rest would fail
// too (quota, a webhook down, an invalid template), so the first batch with
// an error is the last: it returns the number of successful calls and the
// first error. Cancelling ctx stops it between batches.
func SlowStartBatch(ctx context.Context, count, initialBatchSize int, fn func(context.Context) error) (int, error) {
	remaining := count
	successes := 0
	for batch := min(remaining, initialBatchSize); batch > 0; batch = min(2*batch, remaining) {
		if err := ctx.Err(); err != nil {
			return successes, err
		}
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(ctx); err != nil {
					errCh <- err
				}
			})
		}
		wg.Wait()
		successes += batch - len(errCh)
		if len(errCh) > 0 {
			return successes, <-errCh
		}
		remaining -= batch
	}
	return successes, nil
}
