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
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Defaults. They match the reference SDK so the two behave alike against the
// same router.
const (
	DefaultNamespace         = "default"
	DefaultServerPort        = 8888
	DefaultReadyTimeout      = 180 * time.Second
	DefaultCleanupTimeout    = 30 * time.Second
	DefaultRequestTimeout    = 180 * time.Second
	DefaultPerAttemptTimeout = 60 * time.Second
	DefaultMaxDownloadSize   = 256 << 20
	DefaultMaxUploadSize     = 256 << 20
	// DefaultMaxAttempts is the attempt budget of the idempotent
	// operations Read, List and Exists.
	DefaultMaxAttempts = 6

	// maxJSONResponseSize caps every JSON response (execute, list, exists,
	// upload) and every line of a command stream.
	maxJSONResponseSize = 16 << 20
)

// TokenSource returns the bearer token for one request. It is called for every
// HTTP attempt, so a rotated token (a projected service-account token, say)
// is picked up without rebuilding the client.
type TokenSource func(ctx context.Context) (string, error)

// clientConfig is everything a ClientOption can set; Sandbox handles keep a
// copy, so later changes to the Client cannot affect them.
type clientConfig struct {
	routerURL         string
	directPodIP       bool
	token             TokenSource
	httpClient        *http.Client
	roundTripper      http.RoundTripper
	serverPort        int
	namespace         string
	readyTimeout      time.Duration
	cleanupTimeout    time.Duration
	requestTimeout    time.Duration
	perAttemptTimeout time.Duration
	maxDownloadSize   int64
	maxUploadSize     int64
	userAgent         string
	noPodIPHint       bool
	controlPlaneOnly  bool
	tracerProvider    trace.TracerProvider
	traceServiceName  string
}

func defaultClientConfig() clientConfig {
	return clientConfig{
		serverPort:        DefaultServerPort,
		namespace:         DefaultNamespace,
		readyTimeout:      DefaultReadyTimeout,
		cleanupTimeout:    DefaultCleanupTimeout,
		requestTimeout:    DefaultRequestTimeout,
		perAttemptTimeout: DefaultPerAttemptTimeout,
		maxDownloadSize:   DefaultMaxDownloadSize,
		maxUploadSize:     DefaultMaxUploadSize,
		userAgent:         "agent-sandbox-go-sdk",
	}
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

// WithRouterURL sends runtime requests through the sandbox router at base
// (for example "http://sandbox-router-svc.default.svc.cluster.local:8080" or
// an HTTPS gateway). Requests go to <base>/<endpoint> and carry the router's
// X-Sandbox-* headers.
func WithRouterURL(base string) ClientOption {
	return func(c *clientConfig) { c.routerURL = base }
}

// WithDirectPodIP sends runtime requests straight to
// http://<pod IP>:<server port>/<endpoint>, without the router, its headers
// or an Authorization header. Only callers inside the cluster network can
// reach pod IPs.
func WithDirectPodIP() ClientOption {
	return func(c *clientConfig) { c.directPodIP = true }
}

// WithControlPlaneOnly builds a Client that only manages claims (Create,
// CreateClaim, Attach, Suspend, Resume, DeleteClaim) and has no way to reach
// a runtime: its handles' runtime operations fail with ErrInvalidArgument.
// It spares tools that never run a command from locating a router.
func WithControlPlaneOnly() ClientOption {
	return func(c *clientConfig) { c.controlPlaneOnly = true }
}

// WithBearerToken sends "Authorization: Bearer <token>" to the router.
func WithBearerToken(token string) ClientOption {
	return func(c *clientConfig) {
		c.token = func(context.Context) (string, error) { return token, nil }
	}
}

// WithTokenSource sends "Authorization: Bearer <token>" to the router with a
// token fetched for every attempt. An empty token sends no header; an error
// fails the call.
func WithTokenSource(src TokenSource) ClientOption {
	return func(c *clientConfig) { c.token = src }
}

// WithHTTPClient uses hc for runtime requests. Its CheckRedirect is replaced
// on a copy: the SDK never follows redirects, whatever the client says, so a
// compromised runtime cannot point it elsewhere.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *clientConfig) { c.httpClient = hc }
}

// WithRoundTripper uses rt as the transport of the SDK's own http.Client.
// The default transport ignores HTTP(S)_PROXY; a custom one decides itself.
func WithRoundTripper(rt http.RoundTripper) ClientOption {
	return func(c *clientConfig) { c.roundTripper = rt }
}

// WithServerPort sets the runtime's port in the sandbox: the X-Sandbox-Port
// header in router mode, the dialed port in direct mode. Default 8888.
func WithServerPort(port int) ClientOption {
	return func(c *clientConfig) { c.serverPort = port }
}

// WithDefaultNamespace sets the namespace used when Create or Attach get no
// WithNamespace. Default "default".
func WithDefaultNamespace(ns string) ClientOption {
	return func(c *clientConfig) { c.namespace = ns }
}

// WithDefaultReadyTimeout bounds the wait for a claimed sandbox to become
// Ready (name resolution and readiness share it). Default 180 s.
func WithDefaultReadyTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.readyTimeout = d }
}

// WithCleanupTimeout bounds claim deletion in Close and in the rollback of a
// failed Create, which runs on a fresh context so that a cancelled caller
// does not leak the claim. Default 30 s.
func WithCleanupTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.cleanupTimeout = d }
}

// WithRequestTimeout bounds each operation, retries included, when its
// context has no deadline. Default 180 s.
func WithRequestTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.requestTimeout = d }
}

// WithPerAttemptTimeout bounds one HTTP attempt up to its response headers.
// The legacy runtime sends headers only after a command finished, so it also
// bounds how long Run may take unless WithCommandTimeout raises it for a
// call. Default 60 s.
func WithPerAttemptTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.perAttemptTimeout = d }
}

// WithMaxDownloadSize caps the bytes Read accepts. Default 256 MiB.
func WithMaxDownloadSize(n int64) ClientOption {
	return func(c *clientConfig) { c.maxDownloadSize = n }
}

// WithMaxUploadSize caps the bytes Write sends. Default 256 MiB.
func WithMaxUploadSize(n int64) ClientOption {
	return func(c *clientConfig) { c.maxUploadSize = n }
}

// WithoutPodIPHint stops sending X-Sandbox-Pod-IP, so the router resolves
// the sandbox by name itself. Useful when the router refuses the pod's
// address class (a loopback pod IP on a test bed, for instance).
func WithoutPodIPHint() ClientOption {
	return func(c *clientConfig) { c.noPodIPHint = true }
}

// WithUserAgent sets the User-Agent of Kubernetes and runtime requests.
func WithUserAgent(ua string) ClientOption {
	return func(c *clientConfig) { c.userAgent = ua }
}

// createConfig is what Create needs beyond the warm pool name.
type createConfig struct {
	namespace        string
	readyTimeout     time.Duration
	labels           map[string]string
	annotations      map[string]string
	shutdownTime     *time.Time
	ttlAfterFinished *time.Duration
	shutdownPolicy   extensionsv1beta1.ShutdownPolicy
	claimName        string
	waitForReady     bool // Attach, Suspend and Resume only
}

// CreateOption configures Create.
type CreateOption interface{ applyCreate(*createConfig) }

// AttachOption configures Attach.
type AttachOption interface{ applyAttach(*createConfig) }

// SandboxOption is an option that Create and Attach both accept.
type SandboxOption interface {
	CreateOption
	AttachOption
}

type createOption func(*createConfig)

func (o createOption) applyCreate(c *createConfig) { o(c) }

type attachOption func(*createConfig)

func (o attachOption) applyAttach(c *createConfig) { o(c) }

type sandboxOption func(*createConfig)

func (o sandboxOption) applyCreate(c *createConfig) { o(c) }
func (o sandboxOption) applyAttach(c *createConfig) { o(c) }

// WithNamespace sets the namespace of the claim.
func WithNamespace(ns string) SandboxOption {
	return sandboxOption(func(c *createConfig) { c.namespace = ns })
}

// WithReadyTimeout overrides the client's ready timeout for one Create (or
// one Attach with WithWaitForReady).
func WithReadyTimeout(d time.Duration) SandboxOption {
	return sandboxOption(func(c *createConfig) { c.readyTimeout = d })
}

// WithClaimName gives the claim this name instead of a generated one
// (generateName "sandbox-claim-"). A claim of that name that exists already
// makes the create fail with ErrClaimFailed.
func WithClaimName(name string) CreateOption {
	return createOption(func(c *createConfig) { c.claimName = name })
}

// WithLabels adds labels to the claim. The SDK's created-by label wins over a
// label with the same key.
func WithLabels(labels map[string]string) CreateOption {
	return createOption(func(c *createConfig) {
		c.labels = mergeInto(c.labels, labels)
	})
}

// WithAnnotations adds annotations to the claim. A caller-provided
// client-first-requested-at annotation is kept, so a caller that retries
// Create can report its first attempt.
func WithAnnotations(annotations map[string]string) CreateOption {
	return createOption(func(c *createConfig) {
		c.annotations = mergeInto(c.annotations, annotations)
	})
}

// WithTTL makes the claim expire d after Create is called, through
// spec.lifecycle.shutdownTime. What expiry does is the shutdown policy's
// business (WithShutdownPolicy; the API defaults to Retain, which deletes the
// Sandbox and keeps the claim).
func WithTTL(d time.Duration) CreateOption {
	return createOption(func(c *createConfig) {
		t := time.Now().Add(d)
		c.shutdownTime = &t
	})
}

// WithShutdownTime makes the claim expire at t (spec.lifecycle.shutdownTime).
// It and WithTTL set the same field; the last one given wins.
func WithShutdownTime(t time.Time) CreateOption {
	return createOption(func(c *createConfig) { c.shutdownTime = &t })
}

// WithTTLAfterFinished makes the claim expire d after its sandbox finished
// (spec.lifecycle.ttlSecondsAfterFinished, rounded up to whole seconds).
func WithTTLAfterFinished(d time.Duration) CreateOption {
	return createOption(func(c *createConfig) { c.ttlAfterFinished = &d })
}

// WithShutdownPolicy sets spec.lifecycle.shutdownPolicy: Delete,
// DeleteForeground or Retain.
func WithShutdownPolicy(p extensionsv1beta1.ShutdownPolicy) CreateOption {
	return createOption(func(c *createConfig) { c.shutdownPolicy = p })
}

// WithWaitForReady makes Attach wait (up to the ready timeout) for a claim
// that is not bound or not Ready yet, instead of failing with ErrNotReady.
func WithWaitForReady() AttachOption {
	return attachOption(func(c *createConfig) { c.waitForReady = true })
}

func mergeInto(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// callConfig is what a CallOption can set for one operation.
type callConfig struct {
	timeout        time.Duration
	attemptTimeout time.Duration
	maxAttempts    int
	commandTimeout time.Duration
	maxBytes       int64
	stdin          []byte
}

// CallOption configures one operation on a Sandbox.
type CallOption func(*callConfig)

// WithTimeout bounds the whole call, retries included. The earlier of this
// and the context's deadline applies.
func WithTimeout(d time.Duration) CallOption {
	return func(c *callConfig) { c.timeout = d }
}

// WithAttemptTimeout overrides the client's per-attempt timeout for one call.
func WithAttemptTimeout(d time.Duration) CallOption {
	return func(c *callConfig) { c.attemptTimeout = d }
}

// WithMaxAttempts sets the attempt budget of Read, List and Exists (default
// 6) and enables retries of Write (default 1); n <= 0 is ignored. Run and
// Stream ignore it: a command is never sent twice.
func WithMaxAttempts(n int) CallOption {
	return func(c *callConfig) { c.maxAttempts = n }
}

// WithCommandTimeout asks the runtime to stop the command after d (the
// "timeout_seconds" field, our runtime's extension). It also raises the
// call's per-attempt and total timeouts to d plus a margin, because the
// runtime answers Run only when the command is done.
func WithCommandTimeout(d time.Duration) CallOption {
	return func(c *callConfig) { c.commandTimeout = d }
}

// WithStdin hands data to the command of Run or Stream as its standard
// input (the "stdin_base64" field, our runtime's extension; without it the
// command's stdin is empty). The legacy runtime ignores the field.
func WithStdin(data []byte) CallOption {
	return func(c *callConfig) { c.stdin = data }
}

// WithMaxBytes overrides the client's download cap for one Read.
func WithMaxBytes(n int64) CallOption {
	return func(c *callConfig) { c.maxBytes = n }
}

func newCallConfig(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}
