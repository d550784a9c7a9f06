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

package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func TestResumePatch(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	tests := map[string]struct {
		info WakeInfo
		want []jsonPatchOp
	}{
		"suspended by hand": {
			info: WakeInfo{UID: "u1"},
			want: []jsonPatchOp{
				{Op: "test", Path: "/metadata/uid", Value: "u1"},
				{Op: "test", Path: "/spec/operatingMode", Value: "Suspended"},
				{Op: "replace", Path: "/spec/operatingMode", Value: "Running"},
				{Op: "add", Path: "/metadata/annotations/agents.x-k8s.io~1last-activity", Value: "2026-01-02T02:04:05Z"},
			},
		},
		"suspended for idleness": {
			info: WakeInfo{UID: "u1", IdleSuspended: true},
			want: []jsonPatchOp{
				{Op: "test", Path: "/metadata/uid", Value: "u1"},
				{Op: "test", Path: "/spec/operatingMode", Value: "Suspended"},
				{Op: "replace", Path: "/spec/operatingMode", Value: "Running"},
				{Op: "add", Path: "/metadata/annotations/agents.x-k8s.io~1last-activity", Value: "2026-01-02T02:04:05Z"},
				{Op: "remove", Path: "/metadata/annotations/agents.x-k8s.io~1idle-suspended-at"},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []jsonPatchOp
			if err := json.Unmarshal(resumePatch(tc.info, now), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resume patch (-want,+got):\n%s", diff)
			}
		})
	}
	if got := annotationPath("a~b/c"); got != "/metadata/annotations/a~0b~1c" {
		t.Errorf("annotationPath escapes to %q", got)
	}
}

// resumeAuthz is a ResumeAuthorizer whose resume verdict is fixed.
type resumeAuthz struct{ err error }

func (resumeAuthz) Authorize(context.Context, *http.Request, string, string) error { return nil }
func (a resumeAuthz) AuthorizeResume(context.Context, *http.Request, string, string) error {
	return a.err
}

func TestAuthorizeResume(t *testing.T) {
	tests := map[string]struct {
		mode  string
		authz Authorizer
		want  error // nil: allowed
	}{
		"proxy mode allows whoever may proxy": {mode: WakeAuthzProxy, authz: AllowAll()},
		"none refuses":                        {mode: WakeAuthzNone, authz: resumeAuthz{}, want: ErrForbidden},
		"rbac asks the authorizer: yes":       {mode: WakeAuthzRBAC, authz: resumeAuthz{}},
		"rbac asks the authorizer: no":        {mode: WakeAuthzRBAC, authz: resumeAuthz{err: ErrForbidden}, want: ErrForbidden},
		"rbac passes unavailability on":       {mode: WakeAuthzRBAC, authz: resumeAuthz{err: ErrUnavailable}, want: ErrUnavailable},
		"rbac without an identity refuses":    {mode: WakeAuthzRBAC, authz: AllowAll(), want: ErrForbidden},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &Router{opts: Options{WakeAuthz: tc.mode, Authorizer: tc.authz}}
			err := r.authorizeResume(httptest.NewRequest(http.MethodGet, "/", http.NoBody), Target{Namespace: "ns", ID: "a"})
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("authorizeResume = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHoldBound(t *testing.T) {
	r := &Router{opts: Options{ProxyTimeout: 180 * time.Second, WakeTimeout: 60 * time.Second}}
	for _, tc := range []struct {
		header time.Duration
		want   time.Duration
	}{
		{0, 60 * time.Second},
		{5 * time.Second, 5 * time.Second},
		{120 * time.Second, 60 * time.Second},
	} {
		if got := r.holdBound(Target{Timeout: tc.header}); got != tc.want {
			t.Errorf("holdBound with X-Sandbox-Timeout %v = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// The wake knobs are read from the slim object the informer stores.
func TestWakeInfo(t *testing.T) {
	c := newBareCache(t)
	sb := sandboxFor(sandboxPod("ns", "a", "127.30.0.1"))
	sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	sb.Annotations = map[string]string{
		agentsv1beta1.WakeOnRequestAnnotation:   "true",
		agentsv1beta1.IdleSuspendedAtAnnotation: "2026-01-02T03:04:05Z",
	}
	c.putSandbox(sb) // through slimSandbox, as the informer stores it
	got, ok := c.WakeInfo("ns", "a")
	want := WakeInfo{UID: sb.UID, Suspended: true, OptedIn: true, IdleSuspended: true}
	if !ok || got != want {
		t.Errorf("WakeInfo = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := c.WakeInfo("ns", "b"); ok {
		t.Error("WakeInfo found a Sandbox that is not there")
	}
}

// A request of the same burst that arrives after the resume patch returned,
// while the cache still shows the Sandbox Suspended, waits for the cache:
// it does not patch a second time, also when the cached version moved on
// with the controller's status writes (same spec generation). The fake API
// server here accepts the patch without changing the object, so the cache
// never catches up. A later suspend (a new generation) is resumed again.
func TestWakeResumesOnceWhileTheCacheLags(t *testing.T) {
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
		Name: "a", Namespace: "ns", UID: "u1", ResourceVersion: "7", Generation: 3,
		Annotations: map[string]string{agentsv1beta1.WakeOnRequestAnnotation: agentsv1beta1.WakeOnRequestEnabled},
	}}
	sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	r, _, agents := newTestRouterObjs(t, func(o *Options) {
		o.WakeAuthz = WakeAuthzProxy
		o.Authorizer = AllowAll()
	}, sb)
	var patches atomic.Int32
	agents.PrependReactor("patch", "sandboxes", func(clienttesting.Action) (bool, runtime.Object, error) {
		patches.Add(1)
		return true, sb.DeepCopy(), nil
	})
	request := func(step string) {
		t.Helper()
		st := &requestState{target: Target{Namespace: "ns", ID: "a", Timeout: 50 * time.Millisecond}}
		err := r.wake(httptest.NewRequest(http.MethodGet, "/", http.NoBody), st, Constraint{})
		var re *RequestError
		if !errors.As(err, &re) || re.Status != http.StatusGatewayTimeout {
			t.Fatalf("%s: wake = %v, want a 504 (the cache never shows it routable)", step, err)
		}
	}
	// cached puts a version of the Sandbox into the router's cache and
	// waits until the cache holds it.
	cached := func(rv string, generation int64) {
		t.Helper()
		next := sb.DeepCopy()
		next.ResourceVersion, next.Generation = rv, generation
		if err := agents.Tracker().Update(agentsv1beta1.SandboxesResource, next, "ns"); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			obj, ok, _ := r.cache.sandboxes.GetStore().GetByKey("ns/a")
			return ok && obj.(*agentsv1beta1.Sandbox).ResourceVersion == rv, nil
		})
		if err != nil {
			t.Fatalf("the cache never showed resourceVersion %s", rv)
		}
	}
	for i := range 2 {
		request(fmt.Sprintf("request %d on the suspended version", i))
	}
	cached("8", 3) // a status write of the controller: still Suspended
	request("request on a later version of the same suspend")
	if n := patches.Load(); n != 1 {
		t.Errorf("%d resume patches for three requests on one suspend, want 1", n)
	}
	cached("9", 4) // suspended again (the fake never showed the resume)
	request("request on a new suspend")
	if n := patches.Load(); n != 2 {
		t.Errorf("%d resume patches after a new suspend, want 2", n)
	}
}
