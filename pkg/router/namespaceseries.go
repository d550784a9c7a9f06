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

package router

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// A namespace's sandbox_namespace series are removed once it has held no
// routable Sandbox and had no request in flight for seriesGrace, as seen
// by sweeps seriesSweepInterval apart: between 15 and 20 minutes after it
// went idle, long past any scrape of its last values.
const (
	seriesSweepInterval = 5 * time.Minute
	seriesGrace         = 15 * time.Minute
)

// partialDeleter is a metric vector whose series can be removed by label.
type partialDeleter interface {
	DeletePartialMatch(labels prometheus.Labels) int
}

// namespaceSeries bounds the per-namespace metric series by the namespaces
// the router serves now rather than every namespace that ever held a
// Sandbox since it started: without it, months of namespace churn grow
// the exposition (and the registry's memory) without end.
//
// Every request labelled with a namespace runs between begin and end, and
// every write of a sandbox_namespace series happens inside one, so a
// namespace with a request in flight keeps its series whatever the cache
// says (a tunnel outliving its Sandbox is counted when it closes).
type namespaceSeries struct {
	hasSandbox func(namespace string) bool
	vecs       []partialDeleter
	grace      time.Duration
	logger     klog.Logger

	mu sync.Mutex
	// namespaces holds every namespace that may have series: registered
	// by begin, removed with its series.
	namespaces map[string]*namespaceActivity
}

type namespaceActivity struct {
	inflight int
	// idleSince is the first sweep that found the namespace without a
	// Sandbox or a request; zero while it has either.
	idleSince time.Time
}

func newNamespaceSeries(m *Metrics, hasSandbox func(string) bool, logger klog.Logger) *namespaceSeries {
	return &namespaceSeries{
		hasSandbox: hasSandbox,
		vecs:       m.namespaced(),
		grace:      seriesGrace,
		logger:     logger,
		namespaces: map[string]*namespaceActivity{},
	}
}

// begin records a request labelled ns in flight.
func (s *namespaceSeries) begin(ns string) {
	if ns == noNamespace {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.namespaces[ns]
	if a == nil {
		a = &namespaceActivity{}
		s.namespaces[ns] = a
	}
	a.inflight++
	a.idleSince = time.Time{}
}

// end records the end of a request begun with ns, after its last metric
// write.
func (s *namespaceSeries) end(ns string) {
	if ns == noNamespace {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.namespaces[ns]; a != nil {
		a.inflight--
	}
}

// sweep removes the series of every namespace idle for the grace period
// at now, and says which namespaces it removed.
//
// A request that took its label just before the cache lost the
// namespace's last Sandbox, and reaches begin only after a sweep removed
// the namespace, registers it again: whatever series it writes are
// removed by a later sweep. The lock orders begin against the removal, so
// no series is left unregistered.
func (s *namespaceSeries) sweep(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []string
	for ns, a := range s.namespaces {
		switch {
		case a.inflight > 0 || s.hasSandbox(ns):
			a.idleSince = time.Time{}
		case a.idleSince.IsZero():
			a.idleSince = now
		case now.Sub(a.idleSince) >= s.grace:
			for _, v := range s.vecs {
				v.DeletePartialMatch(prometheus.Labels{namespaceLabelName: ns})
			}
			delete(s.namespaces, ns)
			removed = append(removed, ns)
		}
	}
	return removed
}

// run sweeps every interval until ctx ends.
func (s *namespaceSeries) run(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(context.Context) {
		if removed := s.sweep(time.Now()); len(removed) > 0 {
			s.logger.V(2).Info("Removed the metric series of idle namespaces", "namespaces", removed)
		}
	}, interval)
}
