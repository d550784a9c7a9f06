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

import "time"

// EnvSplit is a run's claims with env next to its plain ones (issue 17
// part 1: a claim with env must be served warm with the same latency and
// the same writes as a plain one). Both kinds ran interleaved against the
// same pool, so their ratio is steadier than either figure on a loaded
// machine.
type EnvSplit struct {
	Plain ClaimClass `json:"plain"`
	Env   ClaimClass `json:"env"`
}

// ClaimClass is one kind of claim of a run.
type ClaimClass struct {
	Ready int `json:"ready"`
	Cold  int `json:"cold"`
	// WarmLatency is create → Ready of the warm ones.
	WarmLatency Summary `json:"warmLatency"`
	// CriticalPath counts the writes on each warm claim's own objects
	// between its create and its Ready: exact per claim, where the run's
	// writes per claim are totals that cannot be split by kind.
	CriticalPath *CriticalPath `json:"criticalPath,omitempty"`
}

// envSplitter collects the Ready claims of a run by kind.
type envSplitter struct {
	any   bool
	warm  [2][]time.Duration
	paths [2][]ClaimPath
	ready [2]int
	cold  [2]int
}

// add counts a Ready claim; path is its critical path when measured.
func (s *envSplitter) add(c claimSample, path *ClaimPath) {
	k := 0
	if c.env {
		k, s.any = 1, true
	}
	s.ready[k]++
	if !c.warm {
		s.cold[k]++
		return
	}
	s.warm[k] = append(s.warm[k], c.latency)
	if path != nil {
		s.paths[k] = append(s.paths[k], *path)
	}
}

// summary is nil for a run without claims with env.
func (s *envSplitter) summary() *EnvSplit {
	if !s.any {
		return nil
	}
	class := func(k int) ClaimClass {
		return ClaimClass{Ready: s.ready[k], Cold: s.cold[k], WarmLatency: Summarize(s.warm[k]), CriticalPath: SummarizePaths(s.paths[k])}
	}
	return &EnvSplit{Plain: class(0), Env: class(1)}
}
