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

package controller

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	fakerest "k8s.io/client-go/rest/fake"
)

// restClientFor is a REST client of agents.x-k8s.io/v1beta1 against url,
// decoding only meta/v1 (a Status), as much as StatusPatcher may need.
func restClientFor(t *testing.T, url string) *rest.RESTClient {
	t.Helper()
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	gv := schema.GroupVersion{Group: "agents.x-k8s.io", Version: "v1beta1"}
	rc, err := rest.RESTClientFor(&rest.Config{Host: url, APIPath: "/apis", ContentConfig: rest.ContentConfig{
		GroupVersion: &gv, NegotiatedSerializer: serializer.NewCodecFactory(scheme).WithoutConversion()}})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// The patch goes out as the typed client sends it, and a successful answer
// is not decoded: this one is not even JSON, which the typed client would
// fail on.
func TestStatusPatcherSendsThePatchAndSkipsTheAnswer(t *testing.T) {
	patch := []byte(`{"status":{"podIPs":["127.0.0.9"]}}`)
	var got struct{ method, path, fieldManager, contentType, body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.method, got.path, got.fieldManager = r.Method, r.URL.Path, r.URL.Query().Get("fieldManager")
		got.contentType, got.body = r.Header.Get("Content-Type"), string(body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("not an object"))
	}))
	defer srv.Close()

	typedCalled := false
	patchStatus := StatusPatcher(restClientFor(t, srv.URL), "sandboxes", "agent-sandbox-controller",
		func(context.Context, string, string, []byte) error { typedCalled = true; return nil })
	if err := patchStatus(context.Background(), "team", "s", patch); err != nil {
		t.Fatalf("patch: %v", err)
	}
	if typedCalled {
		t.Fatal("the typed client was used beside a REST client")
	}
	if got.method != http.MethodPatch || got.path != "/apis/agents.x-k8s.io/v1beta1/namespaces/team/sandboxes/s/status" ||
		got.fieldManager != "agent-sandbox-controller" || got.contentType != "application/merge-patch+json" || got.body != string(patch) {
		t.Errorf("sent %+v", got)
	}
}

// An error answer still becomes the API error the StatusWriter and the
// workqueue tell apart (NotFound: the object went away; Conflict: retry).
func TestStatusPatcherReturnsAPIErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		code   int
		reason metav1.StatusReason
		is     func(error) bool
	}{
		"not found": {http.StatusNotFound, metav1.StatusReasonNotFound, apierrors.IsNotFound},
		"conflict":  {http.StatusConflict, metav1.StatusReasonConflict, apierrors.IsConflict},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"` + string(tc.reason) + `","code":` + strconv.Itoa(tc.code) + `}`))
			}))
			defer srv.Close()
			err := StatusPatcher(restClientFor(t, srv.URL), "sandboxes", "m", nil)(context.Background(), "team", "s", []byte(`{}`))
			if !tc.is(err) {
				t.Errorf("error %v (%T), want a %s API error", err, err, tc.reason)
			}
		})
	}
}

// A fake clientset's RESTClient() is a nil *rest.RESTClient: the typed
// patch is used.
func TestStatusPatcherFallsBackToTheTypedClient(t *testing.T) {
	var fakeClient *rest.RESTClient
	called := false
	typed := func(context.Context, string, string, []byte) error { called = true; return nil }
	if err := StatusPatcher(fakeClient, "sandboxes", "m", typed)(context.Background(), "team", "s", nil); err != nil || !called {
		t.Errorf("typed patch called %v, error %v", called, err)
	}
	called = false
	if err := StatusPatcher(&fakerest.RESTClient{}, "sandboxes", "m", typed)(context.Background(), "team", "s", nil); err != nil || !called {
		t.Errorf("with a client that is not a *rest.RESTClient: typed patch called %v, error %v", called, err)
	}
}
