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

package conversion

import "github.com/prometheus/client_golang/prometheus"

// The paths of agent_sandbox_conversion_reviews_total.
const (
	// PathFast: a review of v1beta1 Sandboxes or claims to v1alpha1,
	// converted as bytes (fastpath.go).
	PathFast = "fast"
	// PathTyped: every other review, refused ones included, decoded into
	// Go types.
	PathTyped = "typed"
)

// reviews counts the reviews HandleReview answered. Their rate is what
// serving v1alpha1 costs (one review per stored write of every object
// while the API server keeps a v1alpha1 watch cache), and the share of
// the typed path shows whether the cheap path is the one taken.
var reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "agent_sandbox_conversion_reviews_total",
	Help: "ConversionReviews the webhook answered, by path: fast (v1beta1 Sandboxes and claims to v1alpha1, converted as bytes) or typed (everything else, refused reviews included).",
}, []string{"path"})

// One child per path, resolved once (a review costs ~30 µs; a label
// lookup per review would be visible) and exported at zero from the
// start, so rate() sees the first review of each path.
var (
	fastReviews  = reviews.WithLabelValues(PathFast)
	typedReviews = reviews.WithLabelValues(PathTyped)
)

// Register adds the webhook's metrics to reg; the process that serves
// the webhook calls it once.
func Register(reg prometheus.Registerer) error {
	return reg.Register(reviews)
}
