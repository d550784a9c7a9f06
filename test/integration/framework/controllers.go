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

package framework

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/controllermanager"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// Controllers are controllers running in the test process against the
// test's namespace, wired by the binary's own controllermanager (same
// informers, clients and user agents), stopped when the test ends.
type Controllers struct {
	// Registry holds the controllers' metrics, registered as the binary
	// registers them (reconcile, claim and agent_sandboxes metrics).
	Registry *prometheus.Registry
	// Stop stops the controllers and waits for them, as a crash or a
	// restart would leave things; it also runs when the test ends.
	Stop func()
	// Claim is the claim controller, when it was started: tests read its
	// in-memory state (StateSize).
	Claim *sandboxclaim.Controller
}

// StartSandboxController runs the Sandbox controller for env's namespace
// with its own user agent and informers.
func StartSandboxController(t testing.TB, env *Env) *Controllers {
	t.Helper()
	return StartControllers(t, env, ControllerSandbox)
}

// Controller names for StartControllers.
const (
	ControllerSandbox         = sandbox.Name
	ControllerSandboxTemplate = sandboxtemplate.Name
	ControllerSandboxWarmPool = sandboxwarmpool.Name
	ControllerSandboxClaim    = sandboxclaim.Name
)

// StartControllers runs the named controllers for env's namespace, as the
// binary wires them (same informer transforms), until the test ends.
func StartControllers(t testing.TB, env *Env, names ...string) *Controllers {
	t.Helper()
	return StartControllersWithOptions(t, env, ControllerOptions{}, names...)
}

// ControllerOptions make the controllers' view of the API server worse, to
// prove they stay correct when it is slow or behind.
type ControllerOptions struct {
	// APIDelay is added to every request the controllers send except
	// watches: a slow API server, or a slow controller.
	APIDelay time.Duration
	// WatchDelay holds back every read of a watch stream: informers lag
	// behind the controllers' own writes.
	WatchDelay time.Duration
	// PoolReplenishDelay and PoolMaxRefillRate shape the warm pools'
	// refill, as the binary's flags do.
	PoolReplenishDelay time.Duration
	PoolMaxRefillRate  float64
	// WrapTransport, when set, wraps the controllers' transport (after the
	// degradations above): a test counts or inspects what they send.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// SandboxClock is the Sandbox controller's clock (nil: the real one),
	// and IdleSuspendGrace its --idle-suspend-grace: idle tests step a
	// fake clock instead of waiting for windows to pass.
	SandboxClock     clock.WithTicker
	IdleSuspendGrace time.Duration
	// ClusterWide watches every namespace, as the shipped controller does,
	// instead of env's only: what another namespace holds is then in the
	// controllers' caches, and only their own checks keep it out.
	ClusterWide bool
	// TracerProvider, when set, traces the controllers (--enable-tracing).
	TracerProvider trace.TracerProvider
}

// provenances holds one member record per Env, shared by its pool and
// claim controllers as the binary shares one between them, also when a
// test starts them separately.
var provenances sync.Map

func provenanceOf(env *Env) *sandboxpolicy.MemberProvenance {
	p, _ := provenances.LoadOrStore(env, sandboxpolicy.NewMemberProvenance())
	return p.(*sandboxpolicy.MemberProvenance)
}

// testWorkers are fewer workers than the binary's defaults: a test's
// namespace holds few objects, and the machine runs several packages.
var testWorkers = map[string]int{
	ControllerSandbox:         4,
	ControllerSandboxTemplate: 1,
	ControllerSandboxWarmPool: 2,
	ControllerSandboxClaim:    8,
}

// StartControllersWithOptions is StartControllers with a degraded API.
func StartControllersWithOptions(t testing.TB, env *Env, opts ControllerOptions, names ...string) *Controllers {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	logger := klog.FromContext(ctx)

	// The Manager gives each controller its user agent; the wrappers
	// below stay on every copy it makes.
	cfg := rest.CopyConfig(env.Config)
	if opts.APIDelay > 0 || opts.WatchDelay > 0 {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &degradedTransport{next: rt, opts: opts} })
	}
	if opts.WrapTransport != nil {
		cfg.Wrap(opts.WrapTransport)
	}
	namespace := env.Namespace
	if opts.ClusterWide {
		namespace = ""
	}
	reg := prometheus.NewRegistry()
	m, err := controllermanager.New(ctx, controllermanager.Config{
		API:            cfg,
		Controllers:    names,
		Workers:        testWorkers,
		Namespace:      namespace,
		Metrics:        reg,
		Provenance:     provenanceOf(env),
		TracerProvider: opts.TracerProvider,
		Sandbox: sandbox.Options{ClusterDomain: "cluster.local", FirstStatusDelay: 5 * time.Second,
			Clock: opts.SandboxClock, IdleSuspendGrace: opts.IdleSuspendGrace},
		Pool: sandboxwarmpool.Options{EvictableMembers: true, ReplenishDelay: opts.PoolReplenishDelay,
			MaxRefillRate: opts.PoolMaxRefillRate},
		Claim: sandboxclaim.Options{FirstStatusDelay: 5 * time.Second},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m.Start(ctx)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			m.Wait()
			logger.V(2).Info("Controllers stopped", "controllers", names)
		})
	}
	t.Cleanup(stop)
	claim, _ := m.Controller(ControllerSandboxClaim).(*sandboxclaim.Controller)
	return &Controllers{Registry: reg, Stop: stop, Claim: claim}
}

// degradedTransport delays requests and watch streams.
type degradedTransport struct {
	next http.RoundTripper
	opts ControllerOptions
}

func (d *degradedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	watching := req.URL.Query().Get("watch") == "true"
	if !watching && d.opts.APIDelay > 0 {
		time.Sleep(d.opts.APIDelay)
	}
	resp, err := d.next.RoundTrip(req)
	if err == nil && watching && d.opts.WatchDelay > 0 {
		resp.Body = &slowBody{ReadCloser: resp.Body, delay: d.opts.WatchDelay}
	}
	return resp, err
}

// slowBody delays each read of a watch stream, so every event reaches the
// informer late.
type slowBody struct {
	io.ReadCloser
	delay time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	time.Sleep(b.delay)
	return b.ReadCloser.Read(p)
}
