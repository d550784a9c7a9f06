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

package api

import (
	"context"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// crudClient is the part of a generated typed client the test drives.
type crudClient[T, L runtime.Object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	List(context.Context, metav1.ListOptions) (L, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// ops erases the kind, so one table holds every kind's client.
type ops struct {
	create  func(ctx context.Context, name string) error
	get     func(ctx context.Context, name string) (metav1.Object, error)
	relabel func(ctx context.Context, name, value string) error // read-modify-write Update
	count   func(ctx context.Context) (int, error)
	delete  func(ctx context.Context, name string) error
}

func opsFor[T interface {
	runtime.Object
	metav1.Object
}, L runtime.Object](c crudClient[T, L], newObj func(name string) T) ops {
	return ops{
		create: func(ctx context.Context, name string) error {
			_, err := c.Create(ctx, newObj(name), metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, name string) (metav1.Object, error) {
			return c.Get(ctx, name, metav1.GetOptions{})
		},
		relabel: func(ctx context.Context, name, value string) error {
			o, err := c.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			o.SetLabels(map[string]string{"step": value})
			_, err = c.Update(ctx, o, metav1.UpdateOptions{})
			return err
		},
		count: func(ctx context.Context) (int, error) {
			l, err := c.List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			return meta.LenList(l), nil
		},
		delete: func(ctx context.Context, name string) error {
			return c.Delete(ctx, name, metav1.DeleteOptions{})
		},
	}
}

// kindCase is one kind: its typed client and its shared informer.
type kindCase struct {
	ops      func(c clientset.Interface, ns string) ops
	informer func(informers.SharedInformerFactory) cache.SharedIndexInformer
}

var kindCases = map[string]kindCase{
	"Sandbox": {
		ops: func(c clientset.Interface, ns string) ops {
			return opsFor[*agentsv1beta1.Sandbox, *agentsv1beta1.SandboxList](c.AgentsV1beta1().Sandboxes(ns),
				func(name string) *agentsv1beta1.Sandbox { return newSandbox(ns, name) })
		},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Agents().V1beta1().Sandboxes().Informer()
		},
	},
	"SandboxTemplate": {
		ops: func(c clientset.Interface, ns string) ops {
			return opsFor[*extv1beta1.SandboxTemplate, *extv1beta1.SandboxTemplateList](c.ExtensionsV1beta1().SandboxTemplates(ns),
				func(name string) *extv1beta1.SandboxTemplate { return newTemplate(ns, name) })
		},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxTemplates().Informer()
		},
	},
	"SandboxWarmPool": {
		ops: func(c clientset.Interface, ns string) ops {
			return opsFor[*extv1beta1.SandboxWarmPool, *extv1beta1.SandboxWarmPoolList](c.ExtensionsV1beta1().SandboxWarmPools(ns),
				func(name string) *extv1beta1.SandboxWarmPool { return newPool(ns, name, "tmpl") })
		},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxWarmPools().Informer()
		},
	},
	"SandboxClaim": {
		ops: func(c clientset.Interface, ns string) ops {
			return opsFor[*extv1beta1.SandboxClaim, *extv1beta1.SandboxClaimList](c.ExtensionsV1beta1().SandboxClaims(ns),
				func(name string) *extv1beta1.SandboxClaim { return newClaim(ns, name) })
		},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxClaims().Informer()
		},
	},
}

// eventLog records what an informer delivered, by object name.
type eventLog struct {
	mu     sync.Mutex
	events map[string][]string
}

func (l *eventLog) add(kind string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if kind == "update" {
		kind += ":" + m.GetLabels()["step"]
	}
	l.events[m.GetName()] = append(l.events[m.GetName()], kind)
}

func (l *eventLog) has(name, kind string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.events[name] {
		if k == kind {
			return true
		}
	}
	return false
}

func TestCRUDAndWatchThroughGeneratedClients(t *testing.T) {
	for kind, tc := range kindCases {
		t.Run(kind, func(t *testing.T) {
			env := framework.Setup(t)
			ctx := framework.Context(t, time.Minute)
			c, ns := env.Agents, env.Namespace
			o := tc.ops(c, ns)

			factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
			inf := tc.informer(factory)
			events := &eventLog{events: map[string][]string{}}
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(o any) { events.add("add", o) },
				UpdateFunc: func(_, o any) { events.add("update", o) },
				DeleteFunc: func(o any) { events.add("delete", o) },
			}); err != nil {
				t.Fatal(err)
			}
			informerCtx, stopInformers := context.WithCancel(ctx)
			factory.Start(informerCtx.Done())
			// Shutdown waits for the informers, which stop only once their
			// context is done.
			t.Cleanup(func() { stopInformers(); factory.Shutdown() })
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}

			for _, name := range []string{"first", "second"} {
				if err := o.create(ctx, name); err != nil {
					t.Fatalf("create %s: %v", name, err)
				}
			}
			got, err := o.get(ctx, "first")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.GetUID() == "" || got.GetGeneration() != 1 {
				t.Errorf("created object: uid %q generation %d, want a uid and generation 1", got.GetUID(), got.GetGeneration())
			}
			if err := o.relabel(ctx, "first", "updated"); err != nil {
				t.Fatalf("update: %v", err)
			}
			got, err = o.get(ctx, "first")
			if err != nil {
				t.Fatalf("get after update: %v", err)
			}
			if got.GetLabels()["step"] != "updated" {
				t.Errorf("label after update = %q, want %q", got.GetLabels()["step"], "updated")
			}
			if n, err := o.count(ctx); err != nil || n != 2 {
				t.Fatalf("list: %d items, err %v; want 2", n, err)
			}
			if err := o.delete(ctx, "second"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := o.get(ctx, "second"); !apierrors.IsNotFound(err) {
				t.Fatalf("get after delete: err %v, want NotFound", err)
			}

			// The informer, fed by the clientset's watch, sees every step.
			err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				return events.has("first", "add") && events.has("first", "update:updated") &&
					events.has("second", "add") && events.has("second", "delete"), nil
			})
			if err != nil {
				events.mu.Lock()
				defer events.mu.Unlock()
				t.Fatalf("informer events %v: want add, update and delete", events.events)
			}
			keys := inf.GetStore().ListKeys()
			if len(keys) != 1 || keys[0] != ns+"/first" {
				t.Errorf("informer store keys = %v, want [%s/first]", keys, ns)
			}
		})
	}
}
