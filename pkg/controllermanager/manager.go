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

package controllermanager

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	kubeinformers "github.com/agentsandbox/agent-sandbox/generated/kube/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/clientconn"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/agentsclient"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/metrics"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

// BinaryName is the binary, and the product of every User-Agent its
// clients send.
const BinaryName = "agent-sandbox-controller"

// Components of the binary's clients that belong to no controller, named
// as kube-controller-manager names its own.
const (
	SharedInformersUserAgent = "shared-informers"
	LeaderElectionUserAgent  = "leader-election"
)

// UserAgent is the User-Agent of the binary's client for component:
// "agent-sandbox-controller/<version> (<os>/<arch>) <component>", the
// shape of kube-controller-manager's, so that an API server audit log
// entry names the release and the controller that sent it.
func UserAgent(component string) string {
	v := version.Get()
	return fmt.Sprintf("%s/%s (%s) %s", BinaryName, v.GitVersion, v.Platform, component)
}

// Config is what a Manager is built from: the client configs, which
// controllers run and how, and the per-controller options the binary's
// flags set. The options' Metrics, ClaimMetrics, Provenance and (the
// Sandbox controller's) Owners fields are filled in by the Manager.
type Config struct {
	// API is the client config of the controllers' own requests; each
	// controller gets a copy carrying its user agent.
	API *rest.Config
	// Watch is the client config of the shared informers' lists and
	// watches (--separate-watch-connection); nil means API.
	Watch *rest.Config
	// Controllers names the controllers to build (see Enabled); an
	// unknown or repeated name is an error.
	Controllers []string
	// Workers are the concurrent workers per controller name; a missing
	// name gets its flag's default, and anything below 1 runs one worker.
	Workers map[string]int
	// Namespace limits the informers to one namespace; empty watches all,
	// as the binary does.
	Namespace string
	// CacheLabelSelectors caches only Pods and Services carrying the
	// Sandbox name-hash label (--cache-label-selectors).
	CacheLabelSelectors bool
	// Metrics registers the reconcile, claim and Sandbox metrics; nil
	// keeps them in a private registry.
	Metrics prometheus.Registerer
	// Provenance is the warm pool controller's record of the members it
	// made, read by the claim controller; nil starts an empty one. A test
	// that runs the two through separate Managers passes the same one.
	Provenance *sandboxpolicy.MemberProvenance
	// TracerProvider, when not nil, gives each controller a tracer
	// (--enable-tracing); the Options' Tracer fields are set from it.
	TracerProvider trace.TracerProvider

	Sandbox  sandbox.Options
	Template sandboxtemplate.Options
	Pool     sandboxwarmpool.Options
	Claim    sandboxclaim.Options
}

// Informers are the shared informer factories every controller asks for
// its informers, so that each kind is listed and watched once.
type Informers struct {
	// Children holds Pods and Services, the kinds --cache-label-selectors
	// scopes to Sandbox children.
	Children kubeinformers.SharedInformerFactory
	// Kube holds the other kube kinds, never label-scoped: PVCs are read
	// by name, and NetworkPolicies carry no Sandbox label.
	Kube   kubeinformers.SharedInformerFactory
	Agents informers.SharedInformerFactory
}

// Build is what a controller's constructor gets.
type Build struct {
	Config *Config
	// Kube and Agents are the controller's own clients, sending its user
	// agent.
	Kube      kubeclient.Interface
	Agents    agentsclient.Interface
	Informers Informers
	// ReconcileMetrics, EventMetrics and Provenance are shared by every
	// controller of the Manager.
	ReconcileMetrics *metrics.ReconcileMetrics
	EventMetrics     *metrics.EventMetrics
	Provenance       *sandboxpolicy.MemberProvenance
}

// Manager holds the built controllers and their informers.
type Manager struct {
	informers   Informers
	controllers []builtController
	wg          sync.WaitGroup
}

type builtController struct {
	name    string
	runner  Runner
	workers int
}

// clientsFunc returns the clients that send component's user agent,
// through the watch connection when watch is set.
type clientsFunc func(component string, watch bool) (kubeclient.Interface, agentsclient.Interface, error)

// New builds the controllers cfg names, each with clients of its own user
// agent, on shared informers listed and watched by a client of their own
// ("shared-informers"). Nothing runs until Start.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.API == nil {
		return nil, fmt.Errorf("no API client config")
	}
	watchCfg := cfg.Watch
	if watchCfg == nil {
		watchCfg = cfg.API
	}
	return build(ctx, cfg, func(component string, watch bool) (kubeclient.Interface, agentsclient.Interface, error) {
		c := cfg.API
		if watch {
			c = watchCfg
		}
		// The copy keeps the transport (and any wrappers), so every
		// client still shares the same connections.
		c = rest.CopyConfig(c)
		c.UserAgent = UserAgent(component)
		kube, err := kubeclient.NewForConfig(clientconn.ProtobufConfig(c))
		if err != nil {
			return nil, nil, err
		}
		// Custom resources have no protobuf encoding: JSON.
		agents, err := agentsclient.NewForConfig(c)
		return kube, agents, err
	})
}

func build(ctx context.Context, cfg Config, clients clientsFunc) (*Manager, error) {
	for i, name := range cfg.Controllers {
		if !slices.ContainsFunc(controllers, func(d Descriptor) bool { return d.Name == name }) {
			return nil, fmt.Errorf("unknown controller %q", name)
		}
		if slices.Contains(cfg.Controllers[:i], name) {
			return nil, fmt.Errorf("controller %q named twice", name)
		}
	}
	watchKube, watchAgents, err := clients(SharedInformersUserAgent, true)
	if err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Provenance == nil {
		cfg.Provenance = sandboxpolicy.NewMemberProvenance()
	}
	m := &Manager{informers: newInformers(watchKube, watchAgents, cfg.Namespace, cfg.CacheLabelSelectors)}
	reconcileMetrics := metrics.NewReconcileMetrics(cfg.Metrics)
	eventMetrics := metrics.NewEventMetrics(cfg.Metrics)
	for _, d := range controllers {
		if !slices.Contains(cfg.Controllers, d.Name) {
			continue
		}
		kube, agents, err := clients(d.UserAgent, false)
		if err != nil {
			return nil, err
		}
		r, err := d.New(ctx, &Build{Config: &cfg, Kube: kube, Agents: agents, Informers: m.informers,
			ReconcileMetrics: reconcileMetrics, EventMetrics: eventMetrics, Provenance: cfg.Provenance})
		if err != nil {
			return nil, fmt.Errorf("building %s controller: %w", d.Name, err)
		}
		workers, ok := cfg.Workers[d.Name]
		if !ok {
			workers = d.Workers.Default
		}
		m.controllers = append(m.controllers, builtController{name: d.Name, runner: r, workers: max(workers, 1)})
	}
	return m, nil
}

func newInformers(kube kubeclient.Interface, agents agentsclient.Interface, namespace string, cacheLabelSelectors bool) Informers {
	// Informers keep only what the controllers read (StripForCache), and
	// what many cached objects carry unchanged is shared between them
	// (pool members' pod templates, labels, owners, condition strings).
	cacheTransform := controller.NewCacheTransform()
	kubeOpts := []kubeinformers.SharedInformerOption{kubeinformers.WithTransform(cacheTransform.Transform)}
	agentsOpts := []informers.SharedInformerOption{informers.WithTransform(cacheTransform.Transform)}
	if namespace != "" {
		kubeOpts = append(kubeOpts, kubeinformers.WithNamespace(namespace))
		agentsOpts = append(agentsOpts, informers.WithNamespace(namespace))
	}
	childOpts := kubeOpts
	if cacheLabelSelectors {
		childOpts = append(slices.Clip(childOpts), kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = agentsv1beta1.SandboxNameHashLabel
		}))
	}
	return Informers{
		Children: kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, childOpts...),
		Kube:     kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeOpts...),
		Agents:   informers.NewSharedInformerFactoryWithOptions(agents, 0, agentsOpts...),
	}
}

// Controller returns the built controller called name, or nil: tests read
// a controller's in-memory state through it.
func (m *Manager) Controller(name string) Runner {
	for _, c := range m.controllers {
		if c.name == name {
			return c.runner
		}
	}
	return nil
}

// Names lists the built controllers, in table order.
func (m *Manager) Names() []string {
	names := make([]string, 0, len(m.controllers))
	for _, c := range m.controllers {
		names = append(names, c.name)
	}
	return names
}

// Start starts the informers the controllers asked for (a factory starts
// only those, which is why it comes after every constructor) and each
// controller's workers, which wait for their caches themselves. Call it
// once; Wait returns after ctx is done.
func (m *Manager) Start(ctx context.Context) {
	m.informers.Children.Start(ctx.Done())
	m.informers.Kube.Start(ctx.Done())
	m.informers.Agents.Start(ctx.Done())
	for _, c := range m.controllers {
		m.wg.Go(func() { c.runner.Run(ctx, c.workers) })
	}
}

// Wait blocks until every controller has returned (after the ctx given to
// Start is done, once the syncs in flight have finished) and then shuts
// the informers down.
func (m *Manager) Wait() {
	m.wg.Wait()
	m.informers.Children.Shutdown()
	m.informers.Kube.Shutdown()
	m.informers.Agents.Shutdown()
}
