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

package sandboxwarmpool

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/fake"
	informers "github.com/agentsandbox/agent-sandbox/generated/informers/externalversions"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/controller"
)

// A member create observed after the pass counted the members but before
// it decided must not be made again: the pass goes by whether its earlier
// writes were all visible when it started counting.
func TestNoCreateWhenExpectationsSettleMidPass(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pool := &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool", UID: "pool-uid", Generation: 1},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To(int32(3)), TemplateRef: extv1beta1.SandboxTemplateRef{Name: "t"}},
	}
	tmpl := &extv1beta1.SandboxTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t"}}
	member := func(name string) *agentsv1beta1.Sandbox {
		// Built from the template as the pool builds members, so it counts.
		sb := newMember(pool, tmpl, controller.TemplateHashes{}, false)
		sb.ObjectMeta = metav1.ObjectMeta{
			Namespace: "ns", Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{
				agentsv1beta1.WarmPoolSandboxLabel: agentsv1beta1.NameHash("pool"),
				agentsv1beta1.LaunchTypeLabel:      agentsv1beta1.LaunchTypeWarm,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pool, extv1beta1.SandboxWarmPoolGroupVersionKind)},
		}
		return sb
	}
	client := fake.NewSimpleClientset()
	kube := k8sfake.NewClientset()
	inf := informers.NewSharedInformerFactory(client, 0)
	kinf := kubeinformers.NewSharedInformerFactory(kube, 0)
	pods := kinf.Core().V1().Pods()
	c, err := NewController(ctx, kube, client, inf.Extensions().V1beta1().SandboxWarmPools(), inf.Extensions().V1beta1().SandboxTemplates(),
		inf.Agents().V1beta1().Sandboxes(), pods.Lister(), pods.Informer().HasSynced, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = inf.Extensions().V1beta1().SandboxWarmPools().Informer().GetStore().Add(pool)
	_ = inf.Extensions().V1beta1().SandboxTemplates().Informer().GetStore().Add(tmpl)
	sandboxes := inf.Agents().V1beta1().Sandboxes().Informer().GetIndexer()
	for _, name := range []string{"pool-a", "pool-b"} {
		if err := sandboxes.Add(member(name)); err != nil {
			t.Fatal(err)
		}
	}
	// The third member was created by an earlier pass; its watch event has
	// not arrived yet.
	key := "ns/pool"
	if !c.expectations.TryExpectCreations(key, 1) {
		t.Fatal("could not raise the expectation")
	}
	// It arrives while this pass is between counting and deciding.
	c.afterClassify = func() {
		_ = sandboxes.Add(member("pool-c"))
		c.expectations.CreationObserved(key)
	}
	client.ClearActions()
	if _, err := c.sync(ctx, cache.ObjectName{Namespace: "ns", Name: "pool"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" {
			t.Fatalf("the pass created a member although all 3 exist: %v", a)
		}
	}
	// The next pass sees all three and creates nothing either.
	c.afterClassify = nil
	if _, err := c.sync(ctx, cache.ObjectName{Namespace: "ns", Name: "pool"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" {
			t.Fatalf("a later pass created a member: %v", a)
		}
	}
}
