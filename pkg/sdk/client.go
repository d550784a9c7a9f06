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

package sdk

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
)

// Client creates SandboxClaims and hands out Sandbox handles. It is safe for
// concurrent use; handles share its HTTP client and its Kubernetes clients.
type Client struct {
	agents clientset.Interface
	cfg    clientConfig
	http   *http.Client
	// base is the parsed router URL; nil in direct mode.
	base *url.URL
	// retryBackoff is a test seam: it returns the pause before retry
	// attempt i.
	retryBackoff func(i int) time.Duration
	tracer       trace.Tracer
}

// NewClient builds a Client from a REST config. A nil cfg means the
// in-cluster config, else the default kubeconfig loading rules (KUBECONFIG,
// ~/.kube/config). No network I/O happens here.
func NewClient(cfg *rest.Config, opts ...ClientOption) (*Client, error) {
	c := defaultClientConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if cfg == nil {
		loaded, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading Kubernetes client config: %w", err)
		}
		cfg = loaded
	}
	cfg = rest.CopyConfig(cfg)
	if c.userAgent != "" {
		cfg = rest.AddUserAgent(cfg, c.userAgent)
	}
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building agent-sandbox clientset: %w", err)
	}
	return newClient(cs, c)
}

// NewClientForClientset builds a Client on an existing typed clientset, for
// callers that already have one (and for tests, with the fake clientset).
func NewClientForClientset(cs clientset.Interface, opts ...ClientOption) (*Client, error) {
	if cs == nil {
		return nil, fmt.Errorf("%w: nil clientset", ErrInvalidArgument)
	}
	c := defaultClientConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return newClient(cs, c)
}

func newClient(cs clientset.Interface, c clientConfig) (*Client, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	cl := &Client{
		agents:       cs,
		cfg:          c,
		http:         newHTTPClient(c),
		retryBackoff: retryBackoff,
		tracer:       c.tracer(),
	}
	if c.routerURL != "" {
		u, err := url.Parse(c.routerURL)
		if err != nil {
			return nil, fmt.Errorf("%w: router URL: %w", ErrInvalidArgument, err)
		}
		cl.base = u
	}
	return cl, nil
}

func (c *clientConfig) validate() error {
	var errs []error
	switch {
	case c.routerURL != "" && c.directPodIP:
		errs = append(errs, errors.New("WithRouterURL and WithDirectPodIP exclude each other"))
	case c.controlPlaneOnly && (c.routerURL != "" || c.directPodIP):
		errs = append(errs, errors.New("WithControlPlaneOnly excludes WithRouterURL and WithDirectPodIP"))
	case c.routerURL == "" && !c.directPodIP && !c.controlPlaneOnly:
		errs = append(errs, errors.New("no transport: give WithRouterURL or WithDirectPodIP (or WithControlPlaneOnly)"))
	case c.routerURL != "":
		u, err := url.Parse(c.routerURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("router URL: %w", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("router URL %q: scheme must be http or https", c.routerURL))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("router URL %q has no host", c.routerURL))
		case u.User != nil || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("router URL %q: userinfo, query and fragment are not allowed", c.routerURL))
		}
	}
	if c.directPodIP && c.token != nil {
		// Failing here beats silently dropping the token: the caller
		// believes requests are authenticated.
		errs = append(errs, errors.New("a bearer token is only sent to the router, not in direct pod IP mode"))
	}
	if c.httpClient != nil && c.roundTripper != nil {
		errs = append(errs, errors.New("WithHTTPClient and WithRoundTripper exclude each other"))
	}
	if c.serverPort < 1 || c.serverPort > 65535 {
		errs = append(errs, fmt.Errorf("server port %d out of range 1-65535", c.serverPort))
	}
	if msgs := validation.IsDNS1123Label(c.namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("default namespace %q: %v", c.namespace, msgs))
	}
	for name, d := range map[string]time.Duration{
		"ready timeout": c.readyTimeout, "cleanup timeout": c.cleanupTimeout,
		"request timeout": c.requestTimeout, "per-attempt timeout": c.perAttemptTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, d))
		}
	}
	if c.maxDownloadSize <= 0 || c.maxUploadSize <= 0 {
		errs = append(errs, errors.New("size limits must be positive"))
	}
	return errors.Join(errs...)
}

// newHTTPClient returns the client used for runtime requests. Redirects are
// never followed (a 3xx becomes an *HTTPError), so neither the router nor a
// sandbox can send the SDK, and its bearer token, somewhere else.
func newHTTPClient(c clientConfig) *http.Client {
	var hc http.Client
	switch {
	case c.httpClient != nil:
		hc = *c.httpClient
	case c.roundTripper != nil:
		hc.Transport = c.roundTripper
	default:
		hc.Transport = newTransport(c.perAttemptTimeout)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// newTransport is the default transport. Proxy is nil on purpose: sandbox
// traffic (and the token) must not leave through an environment proxy. The
// per-attempt timeout is enforced per request rather than through
// ResponseHeaderTimeout, because WithCommandTimeout raises it for one call.
func newTransport(perAttempt time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: perAttempt, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
