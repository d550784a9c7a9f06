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

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// testNow is the fixed clock of every test: AGE columns are stable.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture runs the plugin against fake clientsets and, for the data-plane
// verbs, a router URL the test chooses.
type fixture struct {
	t      *testing.T
	agents *fake.Clientset
	kube   *k8sfake.Clientset
	config *rest.Config
	env    map[string]string
	// routerURL is what openRouter returns; "" fails the test if a verb
	// opens the router.
	routerURL    string
	routerOpened int
	// noClients fails the test when a verb builds clients: usage errors
	// must be found before anything is contacted.
	noClients bool

	stdin       io.Reader
	out, errOut bytes.Buffer
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t: t, agents: fake.NewSimpleClientset(), kube: k8sfake.NewClientset(),
		config: &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "kubeconfig-token"},
		env:    map[string]string{}, stdin: strings.NewReader(""),
	}
	for _, o := range objs {
		f.seed(o)
	}
	return f
}

// seed stores objects under their real resource names (the tracker would
// guess "sandboxs").
func (f *fixture) seed(o runtime.Object) {
	f.t.Helper()
	var err error
	switch o := o.(type) {
	case *agentsv1beta1.Sandbox:
		err = f.agents.Tracker().Create(agentsv1beta1.SandboxesResource, o, o.Namespace)
	case *extensionsv1beta1.SandboxClaim:
		err = f.agents.Tracker().Create(extensionsv1beta1.SandboxClaimsResource, o, o.Namespace)
	default:
		err = f.kube.Tracker().Add(o)
	}
	if err != nil {
		f.t.Fatalf("seeding %T: %v", o, err)
	}
}

func (f *fixture) options() *Options {
	o := NewOptions(genericiooptions.IOStreams{In: f.stdin, Out: &f.out, ErrOut: &f.errOut})
	o.now = func() time.Time { return testNow }
	o.getenv = func(k string) string { return f.env[k] }
	o.newClients = func() (*clients, error) {
		if f.noClients {
			f.t.Error("a usage error must be reported before clients are built")
			return nil, errors.New("no clients in this test")
		}
		return &clients{config: f.config, kube: f.kube, agents: f.agents, namespace: "ns"}, nil
	}
	o.openRouter = func(context.Context, *clients) (string, func(), error) {
		if f.routerURL == "" {
			f.t.Error("this verb must not open the router")
			return "", nil, errors.New("no router in this test")
		}
		f.routerOpened++
		return f.routerURL, func() {}, nil
	}
	return o
}

// run runs the plugin and returns its exit code.
func (f *fixture) run(args ...string) int {
	f.t.Helper()
	f.out.Reset()
	f.errOut.Reset()
	return Run(f.t.Context(), f.options(), args)
}

func readyCond(t agentsv1beta1.ConditionType, status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: t.String(), Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(testNow)}
}

// claimObj is a claim of pool, bound to sandbox when it is not "".
func claimObj(name, pool, sandbox string, created time.Duration, ips ...string) *extensionsv1beta1.SandboxClaim {
	c := &extensionsv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(testNow.Add(-created)),
	}}
	c.Spec.WarmPoolRef.Name = pool
	c.Status.SandboxStatus = extensionsv1beta1.SandboxStatus{Name: sandbox, PodIPs: ips}
	return c
}

// sandboxObj is a Sandbox with a launch type, node, IP and conditions.
func sandboxObj(name, launch, node, ip string, conds ...metav1.Condition) *agentsv1beta1.Sandbox {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	if launch != "" {
		sb.Labels = map[string]string{agentsv1beta1.LaunchTypeLabel: launch}
	}
	sb.Status.NodeName = node
	if ip != "" {
		sb.Status.PodIPs = []string{ip}
	}
	sb.Status.Conditions = conds
	return sb
}

// readySandbox is a Ready warm sandbox on node-1 with IP 127.0.0.11.
func readySandbox(name string) *agentsv1beta1.Sandbox {
	return sandboxObj(name, "warm", "node-1", "127.0.0.11", readyCond(agentsv1beta1.SandboxConditionReady, metav1.ConditionTrue, agentsv1beta1.SandboxReasonDependenciesReady))
}
