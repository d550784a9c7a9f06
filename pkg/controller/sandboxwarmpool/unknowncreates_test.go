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
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// A create whose response is lost but which landed (found by make chaos:
// a pool of 20 held 25 members after one kube-apiserver restart) must not
// be made again: the pool lists its members from the API server once and
// waits for its informer to show the ones it found.
func TestSyncCreateOfUnknownOutcomeIsNotRepeated(t *testing.T) {
	f := newFixture(t)
	tmpl := newTemplate("python")
	f.seed(newPool(3, ""), tmpl)
	// Creates 2 and 3 are stored, but their responses are lost.
	calls := 0
	f.client.PrependReactor("create", "sandboxes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls != 2 && calls != 3 {
			return false, nil, nil
		}
		sb := a.(k8stesting.CreateAction).GetObject().(*agentsv1beta1.Sandbox).DeepCopy()
		sb.Name = fmt.Sprintf("%slost%d", sb.GenerateName, calls)
		sb.UID = types.UID("uid-" + sb.Name)
		if err := f.client.Tracker().Create(agentsv1beta1.SandboxesResource, sb, sb.Namespace); err != nil {
			t.Fatal(err)
		}
		return true, nil, io.ErrUnexpectedEOF
	})
	if _, err := f.runErr(); err == nil {
		t.Fatal("sync succeeded although two creates lost their responses")
	}

	// The informer shows the one create that answered; the other two not yet.
	indexer := f.inf.Agents().V1beta1().Sandboxes().Informer().GetIndexer()
	inCache := func(name string) {
		t.Helper()
		obj, err := f.client.Tracker().Get(agentsv1beta1.SandboxesResource, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		// The fake tracker sets no creationTimestamp; a zero one would be
		// a member not Ready for ages, replaced at once.
		sb := obj.(*agentsv1beta1.Sandbox).DeepCopy()
		sb.CreationTimestamp = metav1.NewTime(f.clock.Now())
		if err := indexer.Add(sb); err != nil {
			t.Fatal(err)
		}
	}
	inCache("pool-gen1")
	f.c.expectations.CreationObserved(poolKeyString)

	lists := func() int {
		n := 0
		for _, a := range f.client.Actions() {
			if a.GetVerb() == "list" && a.GetResource().Resource == "sandboxes" {
				n++
			}
		}
		return n
	}
	creates := func() int {
		n := 0
		for _, a := range f.actions() {
			if a.Verb == "create" {
				n++
			}
		}
		return n
	}
	f.run()
	if got := creates(); got != 0 {
		t.Errorf("%d creates after two creates of unknown outcome landed; want none until the informer shows them", got)
	}
	if got := lists(); got != 1 {
		t.Errorf("%d live lists, want 1", got)
	}
	// Still waiting: no second list, no create.
	f.run()
	if creates() != 0 || lists() != 0 {
		t.Errorf("a second pass sent %d creates and %d lists; want none", creates(), lists())
	}
	inCache("pool-lost2")
	inCache("pool-lost3")
	f.run()
	if creates() != 0 || lists() != 0 {
		t.Errorf("with all three members shown the pass sent %d creates and %d lists; want none", creates(), lists())
	}
	if n := f.c.unknownCreates.len(); n != 0 {
		t.Errorf("%d pools still wait for creates of unknown outcome", n)
	}
}

// A create that did not land (its error proves it) needs no live list;
// when the list finds nothing, the pool creates again at once.
func TestSyncCreateOfUnknownOutcomeThatDidNotLand(t *testing.T) {
	f := newFixture(t)
	tmpl := newTemplate("python")
	f.seed(newPool(1, ""), tmpl)
	f.createErr = func(n int) error {
		if n == 1 {
			return io.ErrUnexpectedEOF // not stored after all
		}
		return nil
	}
	if _, err := f.runErr(); err == nil {
		t.Fatal("sync succeeded although the create failed")
	}
	f.run()
	var got []string
	for _, a := range f.client.Actions() {
		got = append(got, a.GetVerb())
	}
	if want := fmt.Sprint([]string{"list", "create", "patch"}); fmt.Sprint(got) != want {
		t.Errorf("second pass: %v, want %s (a live list that finds nothing, then the create)", got, want)
	}
}

func TestCreateRefused(t *testing.T) {
	gr := schema.GroupResource{Group: "agents.x-k8s.io", Resource: "sandboxes"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"forbidden (quota)":  {apierrors.NewForbidden(gr, "", errors.New("exceeded quota")), true},
		"invalid":            {apierrors.NewInvalid(schema.GroupKind{Group: "agents.x-k8s.io", Kind: "Sandbox"}, "x", nil), true},
		"already exists":     {apierrors.NewAlreadyExists(gr, "x"), true},
		"throttled":          {apierrors.NewTooManyRequests("slow down", 1), true},
		"connection refused": {fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		"server timeout":     {apierrors.NewServerTimeout(gr, "create", 1), false},
		"gateway timeout":    {apierrors.NewTimeoutError("took too long", 1), false},
		"internal error":     {apierrors.NewInternalError(errors.New("etcd")), false},
		"unavailable":        {apierrors.NewServiceUnavailable("shutting down"), false},
		"connection reset":   {fmt.Errorf("read: %w", syscall.ECONNRESET), false},
		"unexpected EOF":     {io.ErrUnexpectedEOF, false},
	} {
		if got := createRefused(tc.err); got != tc.want {
			t.Errorf("%s: createRefused = %v, want %v", name, got, tc.want)
		}
	}
}
