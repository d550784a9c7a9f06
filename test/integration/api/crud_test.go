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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// kindCase drives one kind through create, get, update, list and delete
// with the typed clientset, while a shared informer watches it.
type kindCase struct {
	informer func(informers.SharedInformerFactory) cache.SharedIndexInformer
	create   func(ctx context.Context, c clientset.Interface, ns, name string) error
	get      func(ctx context.Context, c clientset.Interface, ns, name string) (metav1.Object, error)
	// relabel sets a label with a read-modify-write Update.
	relabel func(ctx context.Context, c clientset.Interface, ns, name, value string) error
	list    func(ctx context.Context, c clientset.Interface, ns string) (int, error)
	delete  func(ctx context.Context, c clientset.Interface, ns, name string) error
}

var kindCases = map[string]kindCase{
	"Sandbox": {
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Agents().V1beta1().Sandboxes().Informer()
		},
		create: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			_, err := c.AgentsV1beta1().Sandboxes(ns).Create(ctx, newSandbox(ns, name), metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, c clientset.Interface, ns, name string) (metav1.Object, error) {
			return c.AgentsV1beta1().Sandboxes(ns).Get(ctx, name, metav1.GetOptions{})
		},
		relabel: func(ctx context.Context, c clientset.Interface, ns, name, value string) error {
			o, err := c.AgentsV1beta1().Sandboxes(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			o.Labels = map[string]string{"step": value}
			_, err = c.AgentsV1beta1().Sandboxes(ns).Update(ctx, o, metav1.UpdateOptions{})
			return err
		},
		list: func(ctx context.Context, c clientset.Interface, ns string) (int, error) {
			l, err := c.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		delete: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			return c.AgentsV1beta1().Sandboxes(ns).Delete(ctx, name, metav1.DeleteOptions{})
		},
	},
	"SandboxTemplate": {
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxTemplates().Informer()
		},
		create: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			_, err := c.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, newTemplate(ns, name), metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, c clientset.Interface, ns, name string) (metav1.Object, error) {
			return c.ExtensionsV1beta1().SandboxTemplates(ns).Get(ctx, name, metav1.GetOptions{})
		},
		relabel: func(ctx context.Context, c clientset.Interface, ns, name, value string) error {
			o, err := c.ExtensionsV1beta1().SandboxTemplates(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			o.Labels = map[string]string{"step": value}
			_, err = c.ExtensionsV1beta1().SandboxTemplates(ns).Update(ctx, o, metav1.UpdateOptions{})
			return err
		},
		list: func(ctx context.Context, c clientset.Interface, ns string) (int, error) {
			l, err := c.ExtensionsV1beta1().SandboxTemplates(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		delete: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			return c.ExtensionsV1beta1().SandboxTemplates(ns).Delete(ctx, name, metav1.DeleteOptions{})
		},
	},
	"SandboxWarmPool": {
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxWarmPools().Informer()
		},
		create: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			_, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, newPool(ns, name, "tmpl"), metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, c clientset.Interface, ns, name string) (metav1.Object, error) {
			return c.ExtensionsV1beta1().SandboxWarmPools(ns).Get(ctx, name, metav1.GetOptions{})
		},
		relabel: func(ctx context.Context, c clientset.Interface, ns, name, value string) error {
			o, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			o.Labels = map[string]string{"step": value}
			_, err = c.ExtensionsV1beta1().SandboxWarmPools(ns).Update(ctx, o, metav1.UpdateOptions{})
			return err
		},
		list: func(ctx context.Context, c clientset.Interface, ns string) (int, error) {
			l, err := c.ExtensionsV1beta1().SandboxWarmPools(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		delete: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			return c.ExtensionsV1beta1().SandboxWarmPools(ns).Delete(ctx, name, metav1.DeleteOptions{})
		},
	},
	"SandboxClaim": {
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Extensions().V1beta1().SandboxClaims().Informer()
		},
		create: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			_, err := c.ExtensionsV1beta1().SandboxClaims(ns).Create(ctx, newClaim(ns, name, "pool"), metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, c clientset.Interface, ns, name string) (metav1.Object, error) {
			return c.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, name, metav1.GetOptions{})
		},
		relabel: func(ctx context.Context, c clientset.Interface, ns, name, value string) error {
			o, err := c.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			o.Labels = map[string]string{"step": value}
			_, err = c.ExtensionsV1beta1().SandboxClaims(ns).Update(ctx, o, metav1.UpdateOptions{})
			return err
		},
		list: func(ctx context.Context, c clientset.Interface, ns string) (int, error) {
			l, err := c.ExtensionsV1beta1().SandboxClaims(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		delete: func(ctx context.Context, c clientset.Interface, ns, name string) error {
			return c.ExtensionsV1beta1().SandboxClaims(ns).Delete(ctx, name, metav1.DeleteOptions{})
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
				if err := tc.create(ctx, c, ns, name); err != nil {
					t.Fatalf("create %s: %v", name, err)
				}
			}
			got, err := tc.get(ctx, c, ns, "first")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.GetUID() == "" || got.GetGeneration() != 1 {
				t.Errorf("created object: uid %q generation %d, want a uid and generation 1", got.GetUID(), got.GetGeneration())
			}
			if err := tc.relabel(ctx, c, ns, "first", "updated"); err != nil {
				t.Fatalf("update: %v", err)
			}
			got, err = tc.get(ctx, c, ns, "first")
			if err != nil {
				t.Fatalf("get after update: %v", err)
			}
			if got.GetLabels()["step"] != "updated" {
				t.Errorf("label after update = %q, want %q", got.GetLabels()["step"], "updated")
			}
			if n, err := tc.list(ctx, c, ns); err != nil || n != 2 {
				t.Fatalf("list: %d items, err %v; want 2", n, err)
			}
			if err := tc.delete(ctx, c, ns, "second"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := tc.get(ctx, c, ns, "second"); !apierrors.IsNotFound(err) {
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
