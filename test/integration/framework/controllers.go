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
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
)

// Controllers are controllers running in the test process against the
// test's namespace, as the binary wires them (same informer transforms),
// stopped when the test ends.
type Controllers struct {
	// Registry holds the reconcile metrics of the controllers.
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
	// ClusterWide watches every namespace, as the shipped controller does,
	// instead of env's only: what another namespace holds is then in the
	// controllers' caches, and only their own checks keep it out.
	ClusterWide bool
}

// provenances holds one member record per Env, shared by its pool and
// claim controllers as the binary shares one between them.
var provenances sync.Map

func provenanceOf(env *Env) *controller.MemberProvenance {
	p, _ := provenances.LoadOrStore(env, controller.NewMemberProvenance())
	return p.(*controller.MemberProvenance)
}

// StartControllersWithOptions is StartControllers with a degraded API.
func StartControllersWithOptions(t testing.TB, env *Env, opts ControllerOptions, names ...string) *Controllers {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	logger := klog.FromContext(ctx)

	cfg := rest.AddUserAgent(rest.CopyConfig(env.Config), "integration-controllers")
	if opts.APIDelay > 0 || opts.WatchDelay > 0 {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &degradedTransport{next: rt, opts: opts} })
	}
	if opts.WrapTransport != nil {
		cfg.Wrap(opts.WrapTransport)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kubeOpts := []kubeinformers.SharedInformerOption{kubeinformers.WithTransform(controller.StripForCache)}
	agentsOpts := []informers.SharedInformerOption{informers.WithTransform(controller.StripForCache)}
	if !opts.ClusterWide {
		kubeOpts = append(kubeOpts, kubeinformers.WithNamespace(env.Namespace))
		agentsOpts = append(agentsOpts, informers.WithNamespace(env.Namespace))
	}
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeOpts...)
	agentsFactory := informers.NewSharedInformerFactoryWithOptions(agents, 0, agentsOpts...)

	reg := prometheus.NewRegistry()
	reconcileMetrics := metrics.NewReconcileMetrics(reg)
	claimMetrics, err := sandboxclaim.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var runs []func(context.Context)
	var claimController *sandboxclaim.Controller
	for _, name := range names {
		switch name {
		case ControllerSandbox:
			c, err := sandbox.NewController(ctx, kube, agents, agentsFactory.Agents().V1beta1().Sandboxes(),
				kubeFactory.Core().V1().Pods(), kubeFactory.Core().V1().Services(), kubeFactory.Core().V1().PersistentVolumeClaims(),
				sandbox.Options{ClusterDomain: "cluster.local", Metrics: reconcileMetrics, FirstStatusDelay: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, func(ctx context.Context) { c.Run(ctx, 4) })
		case ControllerSandboxTemplate:
			c, err := sandboxtemplate.NewController(ctx, kube, agents, agentsFactory.Extensions().V1beta1().SandboxTemplates(),
				kubeFactory.Networking().V1().NetworkPolicies(), sandboxtemplate.Options{Metrics: reconcileMetrics})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, func(ctx context.Context) { c.Run(ctx, 1) })
		case ControllerSandboxWarmPool:
			pods := kubeFactory.Core().V1().Pods()
			c, err := sandboxwarmpool.NewController(ctx, kube, agents, agentsFactory.Extensions().V1beta1().SandboxWarmPools(),
				agentsFactory.Extensions().V1beta1().SandboxTemplates(), agentsFactory.Agents().V1beta1().Sandboxes(),
				pods.Lister(), pods.Informer().HasSynced, sandboxwarmpool.Options{Metrics: reconcileMetrics, EvictableMembers: true,
					ReplenishDelay: opts.PoolReplenishDelay, MaxRefillRate: opts.PoolMaxRefillRate, Provenance: provenanceOf(env)})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, func(ctx context.Context) { c.Run(ctx, 2) })
		case ControllerSandboxClaim:
			c, err := sandboxclaim.NewController(ctx, kube, agents, agentsFactory.Extensions().V1beta1().SandboxClaims(),
				agentsFactory.Extensions().V1beta1().SandboxWarmPools(), agentsFactory.Extensions().V1beta1().SandboxTemplates(),
				agentsFactory.Agents().V1beta1().Sandboxes(), sandboxclaim.Options{Metrics: reconcileMetrics, ClaimMetrics: claimMetrics,
					FirstStatusDelay: 5 * time.Second, Provenance: provenanceOf(env)})
			if err != nil {
				t.Fatal(err)
			}
			claimController = c
			runs = append(runs, func(ctx context.Context) { c.Run(ctx, 8) })
		default:
			t.Fatalf("unknown controller %q", name)
		}
	}
	kubeFactory.Start(ctx.Done())
	agentsFactory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run(ctx) })
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			kubeFactory.Shutdown()
			agentsFactory.Shutdown()
			logger.V(2).Info("Controllers stopped", "controllers", names)
		})
	}
	t.Cleanup(stop)
	return &Controllers{Registry: reg, Stop: stop, Claim: claimController}
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
