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

package conversion

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func reviewOf(t testing.TB, apiVersion, desired string, objs ...string) []byte {
	t.Helper()
	// The API server sends an empty response for the webhook to fill
	// (k8s.io/apiextensions-apiserver's webhook converter), so every
	// review here carries one too.
	r := review{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "ConversionReview"},
		Request:  &apiextensionsv1.ConversionRequest{UID: "req-1", DesiredAPIVersion: desired},
		Response: &apiextensionsv1.ConversionResponse{}}
	for _, o := range objs {
		r.Request.Objects = append(r.Request.Objects, runtime.RawExtension{Raw: []byte(o)})
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const alphaSandbox = `{"apiVersion":"agents.x-k8s.io/v1alpha1","kind":"Sandbox","metadata":{"name":"s","namespace":"n"},
"spec":{"replicas":0,"podTemplate":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`

func TestHandleReview(t *testing.T) {
	for _, reviewVersion := range []string{"apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1"} {
		resp, status, msg := HandleReview(reviewOf(t, reviewVersion, "agents.x-k8s.io/v1beta1", alphaSandbox))
		if status != http.StatusOK {
			t.Fatalf("%s: status %d %s", reviewVersion, status, msg)
		}
		var out review
		if err := json.Unmarshal(resp, &out); err != nil {
			t.Fatal(err)
		}
		if out.APIVersion != reviewVersion || out.Response.UID != "req-1" || out.Response.Result.Status != metav1.StatusSuccess {
			t.Fatalf("%s: response %+v", reviewVersion, out)
		}
		var sb map[string]any
		if err := json.Unmarshal(out.Response.ConvertedObjects[0].Raw, &sb); err != nil {
			t.Fatal(err)
		}
		if sb["apiVersion"] != "agents.x-k8s.io/v1beta1" || sb["spec"].(map[string]any)["operatingMode"] != "Suspended" {
			t.Errorf("converted %v: want v1beta1 with operatingMode Suspended", sb)
		}
	}
}

func TestHandleReviewRefusesByName(t *testing.T) {
	tests := map[string]struct {
		body       []byte
		wantStatus int
		wantIn     string
	}{
		"not JSON":        {[]byte("{"), http.StatusBadRequest, "malformed ConversionReview"},
		"wrong kind":      {[]byte(`{"apiVersion":"v1","kind":"Pod"}`), http.StatusBadRequest, "expected an apiextensions.k8s.io"},
		"no request":      {[]byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`), http.StatusBadRequest, "no request"},
		"unknown kind":    {reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1beta1", `{"apiVersion":"agents.x-k8s.io/v1alpha1","kind":"Widget"}`), http.StatusOK, `unsupported kind "Widget"`},
		"unknown version": {reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v2", alphaSandbox), http.StatusOK, `unsupported version "v2"`},
		"cross group":     {reviewOf(t, "apiextensions.k8s.io/v1", "extensions.agents.x-k8s.io/v1beta1", alphaSandbox), http.StatusOK, "cannot convert Sandbox"},
		"object not JSON": {reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1beta1", `"just a string"`), http.StatusOK, "decoding object"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, status, msg := HandleReview(tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", status, msg, tc.wantStatus)
			}
			if status != http.StatusOK {
				if !strings.Contains(msg, tc.wantIn) {
					t.Errorf("message %q lacks %q", msg, tc.wantIn)
				}
				return
			}
			var out review
			if err := json.Unmarshal(resp, &out); err != nil {
				t.Fatal(err)
			}
			if out.Response.Result.Status != metav1.StatusFailure || !strings.Contains(out.Response.Result.Message, tc.wantIn) {
				t.Errorf("result %+v, want a Failure naming %q", out.Response.Result, tc.wantIn)
			}
		})
	}
}

// FuzzHandleReview: whatever arrives, the handler answers and never
// panics; a 200 answer is always a well-formed review of the request's
// UID, and a successful one holds every object, each in the desired
// version (the API server refuses a response that does not).
func FuzzHandleReview(f *testing.F) {
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1beta1", alphaSandbox))
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1beta1", "extensions.agents.x-k8s.io/v1alpha1",
		`{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","metadata":{"name":"c"},"spec":{"warmPoolRef":{"name":"shadow-pool-t"}}}`))
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1", "extensions.agents.x-k8s.io/v1beta1",
		`{"apiVersion":"extensions.agents.x-k8s.io/v1alpha1","kind":"SandboxTemplate","metadata":{"annotations":{"api.agents.x-k8s.io/v1beta1-volume-claim-templates-policy":"x"}}}`))
	f.Add([]byte(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"objects":[null,{}]}}`))
	f.Add([]byte("\x00\xff{"))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"desiredAPIVersion":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, status, _ := HandleReview(body)
		if status != http.StatusOK {
			return
		}
		var in, out review
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("200 for an unusable review %q", body)
		}
		if err := json.Unmarshal(resp, &out); err != nil || out.Response == nil {
			t.Fatalf("200 with a malformed review: %q", resp)
		}
		if out.Response.UID != in.Request.UID || out.APIVersion != in.APIVersion {
			t.Fatalf("answer %s for %s, request %q: want the same UID and review version", out.Response.UID, out.APIVersion, in.Request.UID)
		}
		if out.Response.Result.Status != metav1.StatusSuccess {
			return
		}
		if len(out.Response.ConvertedObjects) != len(in.Request.Objects) {
			t.Fatalf("%d objects converted of %d", len(out.Response.ConvertedObjects), len(in.Request.Objects))
		}
		for i, o := range out.Response.ConvertedObjects {
			var tm metav1.TypeMeta
			if err := json.Unmarshal(o.Raw, &tm); err != nil || tm.APIVersion != in.Request.DesiredAPIVersion {
				t.Fatalf("object %d converted to %q (%v), want %s", i, tm.APIVersion, err, in.Request.DesiredAPIVersion)
			}
		}
	})
}

// typeMetaOf stops reading once it has apiVersion and kind, wherever in
// the object they are, and refuses what is not a JSON object.
func TestTypeMetaOf(t *testing.T) {
	want := metav1.TypeMeta{APIVersion: "agents.x-k8s.io/v1beta1", Kind: "Sandbox"}
	for _, raw := range []string{
		`{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"s"}}`,
		`{"metadata":{"name":"s","kind":"Pod"},"spec":[1,{"apiVersion":"v1"}],"kind":"Sandbox","status":{},"apiVersion":"agents.x-k8s.io/v1beta1"}`,
		` { "kind" : "Sandbox" , "apiVersion" : "agents.x-k8s.io/v1beta1" , "spec": {` + "\n" + `} } `,
		// Stops before the tail, which encoding/json would refuse.
		`{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","spec":`,
	} {
		got, err := typeMetaOf([]byte(raw))
		if err != nil || got != want {
			t.Errorf("typeMetaOf(%s) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{``, `null`, `"Sandbox"`, `[{"kind":"Sandbox"}]`, `{"kind":`, `{"apiVersion":1}`} {
		if got, err := typeMetaOf([]byte(raw)); err == nil && got.Kind != "" && got.APIVersion != "" {
			t.Errorf("typeMetaOf(%s) = %+v, want an error or no type", raw, got)
		}
	}
}

// marshalReview writes what json.Marshal writes, the converted objects
// spliced in without a second pass.
func TestMarshalReviewIsJSONMarshal(t *testing.T) {
	objects := []runtime.RawExtension{{Raw: []byte(`{"apiVersion":"a/v1","kind":"K"}`)}, {Raw: []byte(`{"b":[1,2]}`)}}
	for _, r := range []review{
		{TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "ConversionReview"},
			Response: &apiextensionsv1.ConversionResponse{UID: "u-\"1\"", ConvertedObjects: objects, Result: metav1.Status{Status: metav1.StatusSuccess}}},
		{TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1beta1", Kind: "ConversionReview"},
			Response: &apiextensionsv1.ConversionResponse{UID: "u2", Result: metav1.Status{Status: metav1.StatusFailure, Message: "object 0: <bad>"}}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalReview(r)
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("marshalReview wrote invalid JSON %s: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		// A repeated key would decode as its last value here; strict
		// decoders refuse it.
		if n := bytes.Count(got, []byte(`"convertedObjects"`)); n > 1 {
			t.Errorf("marshalReview wrote convertedObjects %d times: %s", n, got)
		}
		// json.Marshal writes a failure's missing objects as null;
		// marshalReview leaves the key out.
		if resp := w["response"].(map[string]any); resp["convertedObjects"] == nil {
			delete(resp, "convertedObjects")
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("marshalReview differs from json.Marshal (-want +got):\n%s", diff)
		}
		if r.Response.Result.Status == metav1.StatusSuccess && len(r.Response.ConvertedObjects) != len(objects) {
			t.Errorf("marshalReview changed the review it was given")
		}
	}
}
