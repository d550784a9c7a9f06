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

// Package clients builds the controller's API clients from the generated
// typed group clients alone. The generated top-level clientsets also carry
// a discovery client, and client-go's discovery imports
// k8s.io/client-go/kubernetes/scheme, which registers every built-in API
// group at start-up: ~14 MB of binary and ~9 MiB of resident memory in a
// process that uses four of them. The packages under clients name only
// the groups the controller calls; the generated clientsets (and their
// fakes) still satisfy their interfaces, so tests and other programs can
// pass those.
package clients

import (
	"fmt"
	"net/http"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Prepare returns a copy of c with a user agent and a rate limiter set as
// a generated clientset's NewForConfig sets them, and one HTTP client for
// every group client built from it, so they share connections.
func Prepare(c *rest.Config) (*rest.Config, *http.Client, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, nil, fmt.Errorf("burst must be above 0 when QPS is set and RateLimiter is not")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	httpClient, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, nil, err
	}
	return &cfg, httpClient, nil
}
