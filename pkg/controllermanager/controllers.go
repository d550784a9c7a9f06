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

// Package controllermanager is the one wiring of the agent-sandbox
// controllers, shared by cmd/agent-sandbox-controller and the integration
// tests so that what the tests run is what ships: a table of the
// controllers (name, constructor, workers flag, user agent, informers) and
// a Manager that builds the enabled ones on shared informers, each with
// clients of its own, and runs them.
package controllermanager

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"go.opentelemetry.io/otel/trace"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
	"github.com/agentsandbox/agent-sandbox/pkg/sandboxpolicy"
)

// Runner is a built controller: Run syncs with workers goroutines until
// ctx is done and returns once the syncs in flight have finished.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Descriptor is one row of the controller table.
type Descriptor struct {
	// Name names the controller: its workqueue, the controller label of
	// its metrics, and its key in Config.Controllers and Config.Workers.
	Name string
	// UserAgent is the component in the User-Agent of the controller's
	// own clients (see UserAgent). It is the controller's field manager,
	// so the API server's audit log and the objects' managedFields name a
	// controller alike.
	UserAgent string
	// Extension marks the controllers of the extensions API, which the
	// binary runs only with --extensions.
	Extension bool
	// Workers is the controller's concurrent workers flag.
	Workers WorkersFlag
	// Informers are the shared informers the constructor asks for; the
	// factories start only what was asked for (a unit test holds the
	// constructors to this list).
	Informers []schema.GroupVersionResource
	// New builds the controller on its own clients and the shared
	// informers, and registers its event handlers; the informers are not
	// started yet.
	New func(ctx context.Context, b *Build) (Runner, error)
}

// WorkersFlag is a controller's --*-concurrent-workers flag.
type WorkersFlag struct {
	Name    string
	Default int
	Usage   string
	// Lenient runs one worker for a value below 1 instead of refusing it:
	// the template flag never checked its value, and a Deployment that
	// passes 0 must keep starting.
	Lenient bool
}

var (
	podsResource            = corev1.SchemeGroupVersion.WithResource("pods")
	servicesResource        = corev1.SchemeGroupVersion.WithResource("services")
	pvcsResource            = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
	networkPoliciesResource = networkingv1.SchemeGroupVersion.WithResource("networkpolicies")
)

// controllers is the table, in build order: the Sandbox controller first,
// as the one every installation runs.
var controllers = []Descriptor{
	{
		Name:      sandbox.Name,
		UserAgent: sandbox.FieldManager,
		Workers: WorkersFlag{Name: "sandbox-concurrent-workers", Default: 100,
			Usage: "Sandboxes synced concurrently; must be > 0."},
		Informers: []schema.GroupVersionResource{agentsv1beta1.SandboxesResource, podsResource, servicesResource, pvcsResource},
		New:       newSandboxController,
	},
	{
		Name:      sandboxtemplate.Name,
		UserAgent: sandboxtemplate.FieldManager,
		Extension: true,
		Workers: WorkersFlag{Name: "sandbox-template-concurrent-workers", Default: 1,
			Usage: "SandboxTemplates synced concurrently (with --extensions).", Lenient: true},
		Informers: []schema.GroupVersionResource{extv1beta1.SandboxTemplatesResource, networkPoliciesResource},
		New:       newTemplateController,
	},
	{
		Name:      sandboxwarmpool.Name,
		UserAgent: sandboxwarmpool.FieldManager,
		Extension: true,
		Workers: WorkersFlag{Name: "sandbox-warm-pool-concurrent-workers", Default: 1,
			Usage: "SandboxWarmPools synced concurrently (with --extensions); must be > 0."},
		Informers: []schema.GroupVersionResource{extv1beta1.SandboxWarmPoolsResource, extv1beta1.SandboxTemplatesResource,
			agentsv1beta1.SandboxesResource, podsResource},
		New: newPoolController,
	},
	{
		Name:      sandboxclaim.Name,
		UserAgent: sandboxclaim.FieldManager,
		Extension: true,
		Workers: WorkersFlag{Name: "sandbox-claim-concurrent-workers", Default: 50,
			Usage: "SandboxClaims synced concurrently (with --extensions); must be > 0."},
		Informers: []schema.GroupVersionResource{extv1beta1.SandboxClaimsResource, extv1beta1.SandboxWarmPoolsResource,
			extv1beta1.SandboxTemplatesResource, agentsv1beta1.SandboxesResource},
		New: newClaimController,
	},
}

// Controllers returns the controller table.
func Controllers() []Descriptor {
	return append([]Descriptor(nil), controllers...)
}

// Enabled names the controllers the binary runs: the Sandbox controller,
// and with extensions those of the extensions API too.
func Enabled(extensions bool) []string {
	var names []string
	for _, d := range controllers {
		if !d.Extension || extensions {
			names = append(names, d.Name)
		}
	}
	return names
}

// tracer is the named controller's tracer, nil with tracing off.
func (b *Build) tracer(name string) trace.Tracer {
	if b.Config.TracerProvider == nil {
		return nil
	}
	return b.Config.TracerProvider.Tracer("github.com/agentsandbox/agent-sandbox/controller/" + name)
}

func newSandboxController(ctx context.Context, b *Build) (Runner, error) {
	opts := b.Config.Sandbox
	opts.Tracer = b.tracer(sandbox.Name)
	// The owner rules apply with or without the extensions' controllers:
	// Sandboxes a pool or a claim controls may outlive a run with them.
	opts.Metrics, opts.EventMetrics, opts.Owners = b.ReconcileMetrics, b.EventMetrics, sandboxpolicy.SandboxOwners()
	sandboxes := b.Informers.Agents.Agents().V1beta1().Sandboxes()
	agents := b.Agents.AgentsV1beta1()
	c, err := sandbox.NewController(ctx, b.Kube,
		func(ns string) sandbox.SandboxClient { return agents.Sandboxes(ns) }, sandboxes.Informer(),
		b.Informers.Children.Core().V1().Pods(), b.Informers.Children.Core().V1().Services(),
		b.Informers.Kube.Core().V1().PersistentVolumeClaims(), opts)
	if err != nil {
		return nil, err
	}
	return c, b.Config.Metrics.Register(sandbox.NewSandboxCollector(sandboxes.Lister(), opts.Owners))
}

func newTemplateController(ctx context.Context, b *Build) (Runner, error) {
	opts := b.Config.Template
	opts.Tracer = b.tracer(sandboxtemplate.Name)
	opts.Metrics, opts.EventMetrics = b.ReconcileMetrics, b.EventMetrics
	return sandboxtemplate.NewController(ctx, b.Kube, b.Agents, b.Informers.Agents.Extensions().V1beta1().SandboxTemplates(),
		b.Informers.Kube.Networking().V1().NetworkPolicies(), opts)
}

func newPoolController(ctx context.Context, b *Build) (Runner, error) {
	opts := b.Config.Pool
	opts.Tracer = b.tracer(sandboxwarmpool.Name)
	opts.Metrics, opts.EventMetrics, opts.Provenance = b.ReconcileMetrics, b.EventMetrics, b.Provenance
	ext := b.Informers.Agents.Extensions().V1beta1()
	pods := b.Informers.Children.Core().V1().Pods()
	return sandboxwarmpool.NewController(ctx, b.Kube, b.Agents, ext.SandboxWarmPools(), ext.SandboxTemplates(),
		b.Informers.Agents.Agents().V1beta1().Sandboxes(), pods.Lister(), pods.Informer().HasSynced, opts)
}

func newClaimController(ctx context.Context, b *Build) (Runner, error) {
	claimMetrics, err := sandboxclaim.NewMetrics(b.Config.Metrics)
	if err != nil {
		return nil, err
	}
	opts := b.Config.Claim
	opts.Tracer = b.tracer(sandboxclaim.Name)
	opts.Metrics, opts.EventMetrics, opts.ClaimMetrics, opts.Provenance = b.ReconcileMetrics, b.EventMetrics, claimMetrics, b.Provenance
	ext := b.Informers.Agents.Extensions().V1beta1()
	return sandboxclaim.NewController(ctx, b.Kube, b.Agents, ext.SandboxClaims(), ext.SandboxWarmPools(),
		ext.SandboxTemplates(), b.Informers.Agents.Agents().V1beta1().Sandboxes(), opts)
}
