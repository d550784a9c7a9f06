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
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Cost is what one measured window of a scenario cost the cluster: API
// writes as the apiserver counted them, and the controller's own requests,
// memory and CPU when its metrics are available.
type Cost struct {
	Seconds float64 `json:"seconds"`
	// APIWrites are apiserver_request_total deltas of write verbs by
	// "resource[/subresource] VERB", from every client (bench, controller,
	// kube-controller-manager, scheduler, kwok).
	APIWrites      map[string]float64 `json:"apiWrites"`
	APIWritesTotal float64            `json:"apiWritesTotal"`
	// APIWriteServerMs is the apiserver's mean time per write request by
	// the same keys (apiserver_request_duration_seconds): where a claim's
	// latency goes between the server and everything around it.
	APIWriteServerMs map[string]float64 `json:"apiWriteServerMs,omitempty"`
	// BenchWrites are the writes the bench itself sent in the window.
	BenchWrites float64 `json:"benchWrites"`
	// ControllerRequests are the controller's requests by HTTP method
	// (rest_client_requests_total deltas); nil without its metrics.
	ControllerRequests map[string]float64 `json:"controllerRequests,omitempty"`
	// ControllerPasses are its reconciles by controller; nil without its
	// metrics.
	ControllerPasses map[string]float64 `json:"controllerPasses,omitempty"`
	// ControllerConversionReviews are the reviews its conversion webhook
	// answered, by path (fast, typed): what serving v1alpha1 costs, and
	// whether the API server's reviews take the fast path.
	ControllerConversionReviews map[string]float64 `json:"controllerConversionReviews,omitempty"`
	// ControllerWrites are its POST, PUT, PATCH and DELETE requests.
	ControllerWrites *float64 `json:"controllerWrites,omitempty"`
	// ControllerForbidden counts its requests refused with 403.
	ControllerForbidden *float64 `json:"controllerForbidden,omitempty"`
	ControllerCPUSec    *float64 `json:"controllerCpuSeconds,omitempty"`
	ControllerRSSPeakMB *float64 `json:"controllerRssPeakMiB,omitempty"`
	ControllerRSSEndMB  *float64 `json:"controllerRssEndMiB,omitempty"`
	// ControllerGOGCEnd is its go_gc_gogc_percent when the window closed:
	// unless GOGC is in its environment the controller sets it after each
	// collection from its live heap, so the start's reading does not
	// describe a large pool's window.
	ControllerGOGCEnd *float64 `json:"controllerGogcEnd,omitempty"`
	// ProcessCPUSec is the CPU time of each process on the machine (the
	// control plane's, the controller's and the bench's) over the window;
	// nil without Env.Procs.
	ProcessCPUSec map[string]float64 `json:"processCpuSeconds,omitempty"`
}

// window measures a stretch of a scenario between two readings.
type window struct {
	env        *Env
	start      time.Time
	api        map[string]float64
	apiTimes   APIServerWriteTimes
	procs      map[string]float64
	ctrl       *ControllerSnapshot
	rss        *rssSampler
	benchStart int64
	counter    *writeCounter
}

// apiWrites reads the apiserver's /metrics through the REST client (the
// same credentials as everything else) and reduces it to write counts and
// the server's time for them.
func (e *Env) apiWrites(ctx context.Context) (map[string]float64, APIServerWriteTimes, error) {
	raw, err := e.apiServerMetrics(ctx)
	if err != nil {
		return nil, APIServerWriteTimes{}, err
	}
	writes, err := ParseAPIServerWrites(raw)
	if err != nil {
		return nil, APIServerWriteTimes{}, err
	}
	times, err := ParseAPIServerWriteTimes(raw)
	return writes, times, err
}

// apiServerMetrics is the apiserver's /metrics text.
func (e *Env) apiServerMetrics(ctx context.Context) ([]byte, error) {
	raw, err := e.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading apiserver metrics: %w", err)
	}
	return raw, nil
}

// openWindow takes the opening readings. counter counts the bench's own
// writes, so they can be told apart from the controller's.
func (e *Env) openWindow(ctx context.Context, counter *writeCounter) (*window, error) {
	w := &window{env: e, counter: counter}
	var err error
	if w.api, w.apiTimes, err = e.apiWrites(ctx); err != nil {
		return nil, err
	}
	if e.Ctrl != nil {
		snap, err := e.Ctrl.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		w.ctrl = &snap
		w.rss = startRSSSampler(ctx, e.Ctrl)
	}
	if e.Procs != nil {
		if w.procs, err = e.Procs.CPUSeconds(); err != nil {
			return nil, err
		}
	}
	w.benchStart = counter.Load()
	w.start = time.Now()
	return w, nil
}

// close takes the closing readings. The RSS sampler keeps running, so one
// window can be read at several points (claim path, then refill).
func (w *window) read(ctx context.Context) (Cost, error) {
	c := Cost{Seconds: round3(time.Since(w.start).Seconds())}
	after, times, err := w.env.apiWrites(ctx)
	if err != nil {
		return c, err
	}
	c.APIWrites = DiffCounters(w.api, after)
	c.APIWriteServerMs = times.MeanMsSince(w.apiTimes)
	if w.procs != nil {
		procs, err := w.env.Procs.CPUSeconds()
		if err != nil {
			return c, err
		}
		c.ProcessCPUSec = map[string]float64{}
		for name, sec := range procs {
			if before, ok := w.procs[name]; ok && sec >= before {
				c.ProcessCPUSec[name] = round3(sec - before)
			}
		}
	}
	c.APIWritesTotal = Total(c.APIWrites)
	c.BenchWrites = float64(w.counter.Load() - w.benchStart)
	if w.ctrl != nil {
		snap, err := w.env.Ctrl.Snapshot(ctx)
		if err != nil {
			return c, err
		}
		c.ControllerRequests = DiffCounters(w.ctrl.Requests, snap.Requests)
		c.ControllerPasses = DiffCounters(w.ctrl.Passes, snap.Passes)
		c.ControllerConversionReviews = DiffCounters(w.ctrl.ConversionReviews, snap.ConversionReviews)
		var writes float64
		for m, v := range c.ControllerRequests {
			if IsWriteVerb(m) {
				writes += v
			}
		}
		cpu := round3(snap.CPUSeconds - w.ctrl.CPUSeconds)
		forbidden := snap.Forbidden - w.ctrl.Forbidden
		end := round3(snap.RSSBytes / (1 << 20))
		w.rss.mu.Lock()
		w.rss.peak = max(w.rss.peak, snap.RSSBytes)
		peak := round3(w.rss.peak / (1 << 20))
		w.rss.mu.Unlock()
		c.ControllerWrites, c.ControllerCPUSec, c.ControllerForbidden = &writes, &cpu, &forbidden
		c.ControllerRSSPeakMB, c.ControllerRSSEndMB = &peak, &end
		c.ControllerGOGCEnd = snap.GOGCPercent
	}
	return c, nil
}

// close reads the window a last time and stops its sampler.
func (w *window) close(ctx context.Context) (Cost, error) {
	c, err := w.read(ctx)
	if w.rss != nil {
		w.rss.Stop()
	}
	return c, err
}

// agentResources are the resources (with their group) the agent-sandbox
// controller writes. Of the events only the core ones count: the scheduler
// posts one events.k8s.io Event per Pod, which would swamp the estimate, so
// a controller recording through events.k8s.io is undercounted by its
// events (this one is: about one per member). Pod writes other than
// create, delete and metadata patches (binding, status) come from the
// scheduler and kwok, so they are left out.
var agentResources = []string{
	"sandboxes.agents.x-k8s.io", "sandboxclaims.extensions.agents.x-k8s.io",
	"sandboxwarmpools.extensions.agents.x-k8s.io", "sandboxtemplates.extensions.agents.x-k8s.io",
	"services", "networkpolicies.networking.k8s.io", "persistentvolumeclaims", "events",
}

// EstimatedControllerWrites is what the apiserver counted on the
// controller's resources minus the bench's own writes: an estimate of the
// controller's writes for when its metrics are not available (see
// agentResources for what it misses and what it may wrongly include).
func (c Cost) EstimatedControllerWrites() float64 {
	var n float64
	for k, v := range maps.All(c.APIWrites) {
		res, verb, _ := strings.Cut(k, " ")
		base, sub, _ := strings.Cut(res, "/")
		switch {
		case base == "pods" && (sub == "" && verb != "PUT"):
			n += v
		case slices.Contains(agentResources, base):
			n += v
		}
	}
	return max(n-c.BenchWrites, 0)
}

// ControllerWritesOrEstimate returns the controller's own count when its
// metrics were read, else the apiserver estimate; measured says which.
func (c Cost) ControllerWritesOrEstimate() (n float64, measured bool) {
	if c.ControllerWrites != nil {
		return *c.ControllerWrites, true
	}
	return c.EstimatedControllerWrites(), false
}
