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
	"io"
	"sync"
	"time"
)

// Progress prints what the bench is doing on a writer (stderr): events as
// they happen and, for long waits, a status line at most every interval.
// Whole lines only, no carriage returns, so a log file of a run reads
// like the terminal did.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	start    time.Time
	interval time.Duration
	last     time.Time
	pending  string
	scenario string
}

// NewProgress writes to w, status lines at most every interval.
func NewProgress(w io.Writer, interval time.Duration) *Progress {
	return &Progress{w: w, start: time.Now(), interval: interval}
}

// Scenario sets the prefix of the following lines.
func (p *Progress) Scenario(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scenario = name
}

func (p *Progress) line(msg string) {
	// Progress goes to a terminal or a CI log: a lost line must not fail
	// the run.
	_, _ = fmt.Fprintf(p.w, "[bench %7.1fs] %-7s %s\n", time.Since(p.start).Seconds(), p.scenario, msg)
}

// Logf prints an event line now.
func (p *Progress) Logf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line(fmt.Sprintf(format, args...))
}

// Status records the state of a wait and prints it if the last status
// line is older than the interval.
func (p *Progress) Status(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = fmt.Sprintf(format, args...)
	if time.Since(p.last) >= p.interval {
		p.line(p.pending)
		p.last = time.Now()
		p.pending = ""
	}
}

// Done ends a wait: its final status is printed unless it already was, so
// the log always shows how a wait ended.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending != "" {
		p.line(p.pending)
		p.pending = ""
	}
	p.last = time.Time{}
}
