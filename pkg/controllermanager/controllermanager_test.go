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
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	k8sfake "github.com/agentsandbox/agent-sandbox/generated/kube/clientset/kubernetes/fake"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/agentsclient"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandbox"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxclaim"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxtemplate"
	"github.com/agentsandbox/agent-sandbox/pkg/controller/sandboxwarmpool"
)

// fakeClients hands out fake clients and records the user agent each was
// asked for.
type fakeClients struct {
	mu         sync.Mutex
	userAgents []string
}

func (f *fakeClients) clients(component string, watch bool) (kubeclient.Interface, agentsclient.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if watch {
		component = "watch:" + component
	}
	f.userAgents = append(f.userAgents, component)
	return k8sfake.NewSimpleClientset(), fake.NewSimpleClientset(), nil
}

func TestTable(t *testing.T) {
	var names, agents, flags []string
	for _, d := range Controllers() {
		names, agents, flags = append(names, d.Name), append(agents, d.UserAgent), append(flags, d.Workers.Name)
		if d.Workers.Default < 1 {
			t.Errorf("%s: default workers %d, want at least 1", d.Name, d.Workers.Default)
		}
		if d.New == nil || len(d.Informers) == 0 || d.Workers.Usage == "" {
			t.Errorf("%s: incomplete row %+v", d.Name, d)
		}
	}
	if diff := cmp.Diff([]string{sandbox.Name, sandboxtemplate.Name, sandboxwarmpool.Name, sandboxclaim.Name}, names); diff != "" {
		t.Errorf("controller names (-want,+got):\n%s", diff)
	}
	// The user agent is the field manager: the audit log and managedFields
	// name a controller alike.
	wantAgents := []string{sandbox.FieldManager, sandboxtemplate.FieldManager, sandboxwarmpool.FieldManager, sandboxclaim.FieldManager}
	if diff := cmp.Diff(wantAgents, agents); diff != "" {
		t.Errorf("user agents (-want,+got):\n%s", diff)
	}
	for _, list := range [][]string{agents, flags, append(slices.Clone(agents), SharedInformersUserAgent, LeaderElectionUserAgent)} {
		if s := slices.Compact(slices.Sorted(slices.Values(list))); len(s) != len(list) {
			t.Errorf("not distinct: %v", list)
		}
	}
	if diff := cmp.Diff([]string{sandbox.Name}, Enabled(false)); diff != "" {
		t.Errorf("Enabled(false) (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff(names, Enabled(true)); diff != "" {
		t.Errorf("Enabled(true) (-want,+got):\n%s", diff)
	}
}

func TestUserAgent(t *testing.T) {
	got := UserAgent("sandboxclaim-controller")
	if !strings.HasPrefix(got, BinaryName+"/") || !strings.HasSuffix(got, ") sandboxclaim-controller") {
		t.Errorf("UserAgent = %q, want %s/<version> (<platform>) sandboxclaim-controller", got, BinaryName)
	}
}

// TestDeclaredInformers holds each constructor to its row: the informers
// it asks the factories for are the ones the row lists, so the table
// says what the binary lists and watches for each controller.
func TestDeclaredInformers(t *testing.T) {
	for _, d := range Controllers() {
		t.Run(d.Name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			f := &fakeClients{}
			m, err := build(ctx, Config{Controllers: []string{d.Name}}, f.clients)
			if err != nil {
				t.Fatal(err)
			}
			requested := startedInformers(ctx, m.informers)

			declared := newInformers(k8sfake.NewSimpleClientset(), fake.NewSimpleClientset(), "", false)
			for _, gvr := range d.Informers {
				if _, err := declared.Kube.ForResource(gvr); err == nil {
					continue
				}
				if _, err := declared.Agents.ForResource(gvr); err != nil {
					t.Fatalf("declared informer %v: %v", gvr, err)
				}
			}
			if diff := cmp.Diff(startedInformers(ctx, declared), requested); diff != "" {
				t.Errorf("informers asked for by the constructor, against the row's (-declared,+asked):\n%s", diff)
			}
			want := []string{"watch:" + SharedInformersUserAgent, d.UserAgent}
			if diff := cmp.Diff(want, f.userAgents); diff != "" {
				t.Errorf("clients built (-want,+got):\n%s", diff)
			}
		})
	}
}

// startedInformers starts the factories and names the informer types they
// started: those some caller asked for.
func startedInformers(ctx context.Context, inf Informers) []string {
	var types []string
	add := func(synced map[reflect.Type]bool) {
		for typ := range synced {
			types = append(types, typ.String())
		}
	}
	inf.Children.Start(ctx.Done())
	inf.Kube.Start(ctx.Done())
	inf.Agents.Start(ctx.Done())
	add(inf.Children.WaitForCacheSync(ctx.Done()))
	add(inf.Kube.WaitForCacheSync(ctx.Done()))
	add(inf.Agents.WaitForCacheSync(ctx.Done()))
	slices.Sort(types)
	return slices.Compact(types)
}

func TestBuild(t *testing.T) {
	all := Enabled(true)
	for name, tc := range map[string]struct {
		cfg         Config
		wantErr     string
		wantWorkers map[string]int
	}{
		"defaults": {
			cfg:         Config{Controllers: all},
			wantWorkers: map[string]int{sandbox.Name: 100, sandboxtemplate.Name: 1, sandboxwarmpool.Name: 1, sandboxclaim.Name: 50},
		},
		"workers below one run one": {
			cfg:         Config{Controllers: []string{sandboxtemplate.Name, sandbox.Name}, Workers: map[string]int{sandboxtemplate.Name: 0, sandbox.Name: 7}},
			wantWorkers: map[string]int{sandbox.Name: 7, sandboxtemplate.Name: 1},
		},
		"unknown": {cfg: Config{Controllers: []string{sandbox.Name, "replicaset"}}, wantErr: `unknown controller "replicaset"`},
		"twice":   {cfg: Config{Controllers: []string{sandbox.Name, sandbox.Name}}, wantErr: `controller "sandbox" named twice`},
	} {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			f := &fakeClients{}
			m, err := build(ctx, tc.cfg, f.clients)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, c := range m.controllers {
				got[c.name] = c.workers
				if m.Controller(c.name) != c.runner {
					t.Errorf("Controller(%q) is not the built controller", c.name)
				}
			}
			if diff := cmp.Diff(tc.wantWorkers, got); diff != "" {
				t.Errorf("workers (-want,+got):\n%s", diff)
			}
			if m.Controller("replicaset") != nil {
				t.Error("Controller of an unknown name is not nil")
			}
		})
	}
}

// TestStartAndWait runs every controller on fake clients: each starts, and
// Wait returns once the context is done.
func TestStartAndWait(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	f := &fakeClients{}
	m, err := build(ctx, Config{Controllers: Enabled(true)}, f.clients)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Controller(sandboxclaim.Name).(*sandboxclaim.Controller); !ok {
		t.Fatalf("the claim controller is a %T", m.Controller(sandboxclaim.Name))
	}
	m.Start(ctx)
	cancel()
	m.Wait()
}
