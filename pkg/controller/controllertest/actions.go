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

// Package controllertest holds what the controllers' sync-level tests
// share (sample-controller style): the gist of every API call a fake
// clientset recorded, compared in full with cmp.Diff, and the Events of a
// fake recorder.
package controllertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
)

// Action is everything a test asserts about one API call.
type Action struct {
	Verb, Resource, Subresource, Namespace, Name string
	// Object is the body of a create or update.
	Object runtime.Object
	// PatchType and Patch are a patch's.
	PatchType types.PatchType
	Patch     string
	// Preconditions are a delete's.
	Preconditions *metav1.Preconditions
}

// Actions returns the calls recorded by each fake in turn (the order
// across fakes is not recorded), list and watch removed: informers that
// never run make none, and they are not writes.
func Actions(fakes ...*k8stesting.Fake) []Action {
	var out []Action
	for _, f := range fakes {
		for _, a := range f.Actions() {
			if a.GetVerb() == "list" || a.GetVerb() == "watch" {
				continue
			}
			got := Action{Verb: a.GetVerb(), Resource: a.GetResource().Resource, Subresource: a.GetSubresource(), Namespace: a.GetNamespace()}
			switch a := a.(type) {
			case k8stesting.CreateAction: // and UpdateAction: the same method set
				got.Object = a.GetObject()
				got.Name = a.GetObject().(metav1.Object).GetName()
			case k8stesting.PatchAction:
				got.Name, got.PatchType, got.Patch = a.GetName(), a.GetPatchType(), string(a.GetPatch())
			case k8stesting.DeleteAction:
				got.Name = a.GetName()
				got.Preconditions = a.GetDeleteOptions().Preconditions
			case k8stesting.GetAction:
				got.Name = a.GetName()
			}
			out = append(out, got)
		}
	}
	return out
}

// ExpectActions compares the calls the fakes recorded with want, in order.
func ExpectActions(t testing.TB, want []Action, fakes ...*k8stesting.Fake) {
	t.Helper()
	if diff := cmp.Diff(want, Actions(fakes...)); diff != "" {
		t.Errorf("actions (-want,+got):\n%s", diff)
	}
}

// ExpectEvents compares the Events recorded since the last call with want
// (FakeRecorder format: "type reason message"), in order.
func ExpectEvents(t testing.TB, recorder *events.FakeRecorder, want ...string) {
	t.Helper()
	var got []string
	for done := false; !done; {
		select {
		case e := <-recorder.Events:
			got = append(got, e)
		default:
			done = true
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want,+got):\n%s", diff)
	}
}
