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
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// ControllerMetrics reads the controller's own /metrics: its API requests
// by method (client-go's rest_client_requests_total), RSS and CPU time.
type ControllerMetrics struct {
	url    string
	client *http.Client
	// PID, when not 0, is the controller's process on this machine: its
	// RSS is then sampled from /proc, which costs the controller nothing.
	// Sampling through /metrics makes the controller gather and gzip its
	// whole registry (~47 KB) twice a second, a load a real deployment's
	// scrape every 15-30 s does not have, and one that is charged to the
	// CPU per claim this bench reports.
	PID int
}

// NewControllerMetrics reads url, e.g. http://127.0.0.1:18080/metrics.
func NewControllerMetrics(url string) *ControllerMetrics {
	return &ControllerMetrics{url: url, client: &http.Client{Timeout: 5 * time.Second}}
}

// ControllerSnapshot is one reading of the controller's counters.
type ControllerSnapshot struct {
	Requests map[string]float64 // by method
	// Passes are its reconciles by controller
	// (controller_runtime_reconcile_total, every result).
	Passes map[string]float64
	// ConversionReviews are the webhook's answered reviews by path
	// (agent_sandbox_conversion_reviews_total): fast or typed.
	ConversionReviews map[string]float64
	Forbidden         float64
	RSSBytes          float64
	CPUSeconds        float64
	// GOGCPercent is go_gc_gogc_percent (the Go collector's reading of
	// the GC target, SetGCPercent included); nil when not exposed.
	GOGCPercent *float64
}

// Snapshot fetches and parses the controller's /metrics once.
func (m *ControllerMetrics) Snapshot(ctx context.Context) (ControllerSnapshot, error) {
	text, err := m.fetch(ctx)
	if err != nil {
		return ControllerSnapshot{}, err
	}
	return ParseControllerSnapshot(text)
}

// ParseControllerSnapshot extracts a ControllerSnapshot from a /metrics text.
func ParseControllerSnapshot(text []byte) (ControllerSnapshot, error) {
	var s ControllerSnapshot
	reqs, err := ParseMetric(text, "rest_client_requests_total")
	if err != nil {
		return s, err
	}
	s.Requests = SumBy(reqs, "method")
	passes, err := ParseMetric(text, "controller_runtime_reconcile_total")
	if err != nil {
		return s, err
	}
	s.Passes = SumBy(passes, "controller")
	reviews, err := ParseMetric(text, "agent_sandbox_conversion_reviews_total")
	if err != nil {
		return s, err
	}
	s.ConversionReviews = SumBy(reviews, "path")
	for name, dst := range map[string]*float64{
		"agent_sandbox_api_forbidden_requests_total": &s.Forbidden,
		"process_resident_memory_bytes":              &s.RSSBytes,
		"process_cpu_seconds_total":                  &s.CPUSeconds,
	} {
		samples, err := ParseMetric(text, name)
		if err != nil {
			return s, err
		}
		for _, x := range samples {
			*dst += x.Value
		}
	}
	gogc, err := ParseMetric(text, "go_gc_gogc_percent")
	if err != nil {
		return s, err
	}
	if len(gogc) == 1 {
		s.GOGCPercent = &gogc[0].Value
	}
	return s, nil
}

func (m *ControllerMetrics) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading controller metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading controller metrics: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// RSS is the controller's resident set in bytes: from /proc/PID/statm when
// PID is known, else process_resident_memory_bytes from /metrics (the same
// figure: the Prometheus process collector reads it from /proc too).
func (m *ControllerMetrics) RSS(ctx context.Context) (float64, error) {
	if m.PID > 0 {
		return procRSS(m.PID)
	}
	snap, err := m.Snapshot(ctx)
	return snap.RSSBytes, err
}

// procRSS reads the resident pages (statm's second field) of pid.
func procRSS(pid int) (float64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, fmt.Errorf("reading the controller's RSS: %w", err)
	}
	fields := bytes.Fields(raw)
	if len(fields) < 2 {
		return 0, fmt.Errorf("reading the controller's RSS: /proc/%d/statm is %q", pid, raw)
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the controller's RSS: %w", err)
	}
	return float64(pages) * float64(os.Getpagesize()), nil
}

// rssSamplingInterval is how often the RSS is sampled: often from /proc,
// where a reading costs the controller nothing, rarely through /metrics.
func (m *ControllerMetrics) rssSamplingInterval() time.Duration {
	if m.PID > 0 {
		return 100 * time.Millisecond
	}
	return 500 * time.Millisecond
}

// rssSampler polls the controller's RSS every interval and keeps the peak:
// process_resident_memory_bytes is a gauge, so before/after would miss the
// high point of a burst.
type rssSampler struct {
	mu      sync.Mutex
	peak    float64
	samples int
	stop    context.CancelFunc
	done    chan struct{}
}

func startRSSSampler(ctx context.Context, m *ControllerMetrics) *rssSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &rssSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(m.rssSamplingInterval())
		defer t.Stop()
		for {
			if rss, err := m.RSS(ctx); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, rss)
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak RSS in bytes.
func (s *rssSampler) Stop() float64 {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
