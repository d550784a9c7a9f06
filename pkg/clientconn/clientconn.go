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

// Package clientconn spreads the controller's API traffic over more than
// one connection to the API server (--api-connections,
// --separate-watch-connection). Over HTTP/2 every client-go client of a
// process shares one TLS connection per API server; at high write rates one
// connection's flow control and the server's per-connection stream limit
// become the bottleneck, and informer list/watch traffic competes with
// writes.
package clientconn

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
)

// Split returns the configs for the controllers' API calls and for their
// informers' list and watch. apiConnections > 1 round-robins API calls over
// that many dedicated connections (dialled lazily, on first use);
// separateWatch gives list/watch a dedicated connection of its own.
// Otherwise both are cfg, sharing client-go's one cached transport.
func Split(cfg *rest.Config, apiConnections int, separateWatch bool) (api, watch *rest.Config, err error) {
	if apiConnections < 1 {
		return nil, nil, fmt.Errorf("api connections must be at least 1, got %d", apiConnections)
	}
	if (apiConnections > 1 || separateWatch) && (cfg.Transport != nil || cfg.Dial != nil) {
		// A caller's own transport or dialer decides connections itself.
		return nil, nil, fmt.Errorf("--api-connections and --separate-watch-connection need client-go's own transport; the client config sets a custom Transport or Dial")
	}
	api, watch = cfg, cfg
	if apiConnections > 1 {
		rts := make([]http.RoundTripper, apiConnections)
		for i := range rts {
			if rts[i], err = dedicatedTransport(cfg); err != nil {
				return nil, nil, err
			}
		}
		api = withTransport(cfg, &roundRobin{rts: rts})
	}
	if separateWatch {
		rt, err := dedicatedTransport(cfg)
		if err != nil {
			return nil, nil, err
		}
		watch = withTransport(cfg, rt)
	}
	return api, watch, nil
}

// dedicatedTransport is cfg's full transport (TLS, authentication,
// impersonation, wrappers) on a connection pool of its own: a config with
// its own Dial function is never served from client-go's transport cache.
func dedicatedTransport(cfg *rest.Config) (http.RoundTripper, error) {
	c := rest.CopyConfig(cfg)
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c.Dial = dialer.DialContext
	return rest.TransportFor(c)
}

// withTransport is cfg using rt, which already carries TLS and
// authentication: those fields are cleared, as client-go requires of a
// config with its own Transport.
func withTransport(cfg *rest.Config, rt http.RoundTripper) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Transport = rt
	c.TLSClientConfig = rest.TLSClientConfig{}
	c.BearerToken, c.BearerTokenFile = "", ""
	c.Username, c.Password = "", ""
	c.Impersonate = rest.ImpersonationConfig{}
	c.AuthProvider, c.AuthConfigPersister, c.ExecProvider = nil, nil, nil
	c.WrapTransport = nil
	c.Dial, c.Proxy = nil, nil
	return c
}

// roundRobin sends each request over the next transport in turn.
type roundRobin struct {
	rts  []http.RoundTripper
	next atomic.Uint64
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	i := r.next.Add(1) % uint64(len(r.rts))
	return r.rts[i].RoundTrip(req)
}
