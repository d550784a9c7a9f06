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
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1alpha1"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1alpha1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1alpha1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// storedSandbox is g's hub Sandbox as the API server sends it to the
// webhook: with its apiVersion, kind and managedFields, and the fields
// g.sandbox leaves at their zero values set at random.
func (g gen) storedSandbox() *agentsv1beta1.Sandbox {
	sb := g.sandbox()
	sb.APIVersion, sb.Kind = agentsv1beta1.GroupName+"/"+hubVersion, agentsv1beta1.SandboxKind
	if g.chance() {
		sb.Status.NodeName = "node-" + g.word()
	}
	if g.chance() {
		sb.Spec.OperatingMode = ""
	}
	if g.chance() {
		sb.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationUpdate,
			APIVersion: sb.APIVersion, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:podTemplate":{}}}`)}}
	}
	return sb
}

const sandboxSpoke = "agents.x-k8s.io/v1alpha1"

// typedFromHub is the definition the fast path must match: the typed
// conversion, as Convert marshals it.
func typedFromHub(t *testing.T, raw []byte) []byte {
	t.Helper()
	var in agentsv1beta1.Sandbox
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	out, err := SandboxFromHub(&in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quantityByValue compares quantities as numbers: "0.5" and "500m" are
// the same CPU.
var quantityByValue = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// fieldsV1ByValue compares managed fields as the JSON they are: the typed
// path re-encodes them (escaping "&" as \u0026), the fast path copies.
var fieldsV1ByValue = cmp.Comparer(func(a, b metav1.FieldsV1) bool {
	var x, y any
	return json.Unmarshal(a.GetRawBytes(), &x) == nil && json.Unmarshal(b.GetRawBytes(), &y) == nil && cmp.Equal(x, y)
})

// sameJSON compares two documents as generic JSON: the same keys and
// values, in any order.
func sameJSON(t *testing.T, want, got []byte) string {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("fast path wrote invalid JSON %s: %v", got, err)
	}
	return cmp.Diff(w, g)
}

func TestSandboxFromHubFastMatchesTyped(t *testing.T) {
	for seed := range uint64(seeds) {
		g := gen{rand.New(rand.NewPCG(seed, 7))}
		raw, err := json.Marshal(g.storedSandbox())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := objectFromHubFast(raw, sandboxSpoke)
		if !ok {
			t.Fatalf("seed %d: fast path refused %s", seed, raw)
		}
		if diff := sameJSON(t, typedFromHub(t, raw), got); diff != "" {
			t.Fatalf("seed %d: fast path differs from SandboxFromHub (-typed,+fast):\n%s", seed, diff)
		}
	}
}

// storedClaim is g's hub claim as the API server sends it.
func (g gen) storedClaim() *extv1beta1.SandboxClaim {
	c := g.claim()
	c.APIVersion, c.Kind = extHub, extv1beta1.SandboxClaimKind
	switch g.pick(4) {
	case 0:
		c.Spec.WarmPoolRef.Name = ""
	case 1:
		c.Spec.VolumeClaimTemplates = g.vcts()
	}
	return c
}

func TestClaimFromHubFastMatchesTyped(t *testing.T) {
	for seed := range uint64(seeds) {
		g := gen{rand.New(rand.NewPCG(seed, 8))}
		raw, err := json.Marshal(g.storedClaim())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := objectFromHubFast(raw, extSpoke)
		if !ok {
			t.Fatalf("seed %d: fast path refused %s", seed, raw)
		}
		typed, err := Convert(raw, extSpoke)
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameJSON(t, typed, got); diff != "" {
			t.Fatalf("seed %d: fast path differs from SandboxClaimFromHub (-typed,+fast):\n%s", seed, diff)
		}
	}
	// A claim written through v1alpha1 keeps its saved form for the
	// typed path to restore.
	g := gen{rand.New(rand.NewPCG(2, 8))}
	for range 20 {
		hub, err := SandboxClaimToHub(g.spokeClaim())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(hub)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := objectFromHubFast(raw, extSpoke); ok {
			t.Fatalf("fast path took a claim with saved v1alpha1 state: %s", raw)
		}
	}
}

// The API server's JSON is not always what json.Marshal of the Go type
// writes: nulls, fields this version does not know. The fast path must
// still read it as the typed decode does.
func TestSandboxFromHubFastOddJSON(t *testing.T) {
	for name, raw := range map[string]string{
		"no status":          `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"a"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`,
		"suspended":          `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"a"},"spec":{"operatingMode":"Suspended","podTemplate":{"spec":{"containers":[]}}},"status":{"nodeName":"n"}}`,
		"nulls":              `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"a","annotations":null},"spec":{"operatingMode":null,"service":null,"podTemplate":{"spec":{"containers":null}}},"status":{"conditions":null,"podIPs":null}}`,
		"unknown fields":     `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","extra":1,"metadata":{"name":"a"},"spec":{"future":{"x":1},"podTemplate":{"spec":{"containers":[]}}},"status":{"future":"y","selector":"s"}}`,
		"no metadata":        `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","spec":{"podTemplate":{"spec":{"containers":[]}}}}`,
		"quantity as stored": `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"a"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"0.5"}}}]}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := objectFromHubFast([]byte(raw), sandboxSpoke)
			if !ok {
				t.Fatalf("fast path refused %s", raw)
			}
			// Compared as the typed v1alpha1 object both decode to: the
			// typed path drops nulls and unknown fields and rewrites a
			// quantity in canonical form; the fast path may keep them,
			// and the API server prunes and reads them the same way.
			var want, have agentsv1alpha1.Sandbox
			if err := json.Unmarshal(typedFromHub(t, []byte(raw)), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &have); err != nil {
				t.Fatalf("fast path wrote invalid JSON %s: %v", got, err)
			}
			if diff := cmp.Diff(want, have, quantityByValue); diff != "" {
				t.Fatalf("fast path differs from SandboxFromHub (-typed,+fast):\n%s\nfast: %s", diff, got)
			}
			var doc struct {
				Spec, Status map[string]json.RawMessage
			}
			if err := json.Unmarshal(got, &doc); err != nil {
				t.Fatal(err)
			}
			if _, ok := doc.Spec["operatingMode"]; ok {
				t.Fatalf("fast path kept spec.operatingMode: %s", got)
			}
			if _, ok := doc.Status["nodeName"]; ok {
				t.Fatalf("fast path kept status.nodeName: %s", got)
			}
		})
	}
}

// A Sandbox written through v1alpha1 carries its saved v1alpha1 form,
// which only the typed path restores.
func TestSandboxFromHubFastLeavesSavedStateToTypedPath(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 7))}
	for range 20 {
		hub, err := SandboxToHub(g.spokeSandbox())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(hub)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := objectFromHubFast(raw, sandboxSpoke); ok {
			t.Fatalf("fast path took an object with saved v1alpha1 state: %s", raw)
		}
		// Convert still restores it through the typed path.
		got, err := Convert(raw, agentsv1beta1.GroupName+"/"+spokeVersion)
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameJSON(t, typedFromHub(t, raw), got); diff != "" {
			t.Fatalf("Convert differs from SandboxFromHub (-typed,+got):\n%s", diff)
		}
	}
}

// TestFastPathTakesTheAPIServersReview: the reviews kube-apiserver sends
// carry an empty response for the webhook to fill; the fast path must
// answer them (it once sent every one to the typed path), and must still
// leave a response that does not decode to the typed path, which refuses
// the review.
func TestFastPathTakesTheAPIServersReview(t *testing.T) {
	// As kube-apiserver v1.36 sent it to the bench's webhook (trimmed).
	const capturedResponse = `"response":{"uid":"","convertedObjects":null,"result":{"metadata":{}}}`
	const fromAPIServer = `{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":"d7c82a71-d8c9-44a0-9cb0-84a95d852e34","desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":[` +
		poolMemberJSON + `]},` + capturedResponse + `}`
	claim := `{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","metadata":{"name":"c"},"spec":{"warmPoolRef":{"name":"p"}}}`
	for name, body := range map[string][]byte{
		"captured Sandbox review": []byte(fromAPIServer),
		"Sandbox":                 reviewOf(t, "apiextensions.k8s.io/v1", sandboxSpoke, poolMemberJSON),
		"claim":                   reviewOf(t, "apiextensions.k8s.io/v1", extSpoke, claim),
		"v1beta1 review":          reviewOf(t, "apiextensions.k8s.io/v1beta1", sandboxSpoke, poolMemberJSON),
	} {
		if !strings.Contains(string(body), `"response":{`) {
			t.Fatalf("%s: the review has no response: %s", name, body)
		}
		if _, ok := handleReviewFast(body); !ok {
			t.Errorf("%s: the fast path left the API server's review to the typed path", name)
		}
	}
	for _, response := range []string{`5`, `{"uid":5}`, `{"convertedObjects":{}}`, `{"result":[]}`} {
		body := strings.Replace(fromAPIServer, capturedResponse, `"response":`+response, 1)
		if _, ok := handleReviewFast([]byte(body)); ok {
			t.Errorf("the fast path answered a review whose response %s does not decode", response)
		}
		if _, status, _ := handleReviewTyped([]byte(body)); status != http.StatusBadRequest {
			t.Errorf("the typed path answered %d to a review whose response %s does not decode", status, response)
		}
	}
}

// spokeOf is a new v1alpha1 object of the kind the fast path converts to,
// nil for any other.
func spokeOf(tm metav1.TypeMeta) any {
	switch {
	case tm.APIVersion == sandboxSpoke && tm.Kind == "Sandbox":
		return new(agentsv1alpha1.Sandbox)
	case tm.APIVersion == extSpoke && tm.Kind == "SandboxClaim":
		return new(extv1alpha1.SandboxClaim)
	}
	return nil
}

// FuzzHandleReviewFastMatchesTyped: whatever the fast path answers, the
// typed path answers the same: the same review, UID and result, and
// converted objects that decode to the same v1alpha1 Sandboxes.
func FuzzHandleReviewFastMatchesTyped(f *testing.F) {
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1alpha1", poolMemberJSON))
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1beta1", "agents.x-k8s.io/v1alpha1", poolMemberJSON, poolMemberJSON))
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1alpha1"))
	f.Add(reviewOf(f, "apiextensions.k8s.io/v1", "extensions.agents.x-k8s.io/v1alpha1",
		`{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","metadata":{"name":"c"},"spec":{"warmPoolRef":{"name":"shadow-pool-t"},"volumeClaimTemplates":[{"metadata":{"name":"w"}}]},"status":{"sandbox":{"name":"c"}}}`,
		`{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","spec":{"warmPoolRef":{"name":"p"},"env":[{"name":"A","value":"b"}]}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":"u","desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":[{"kind":"Sandbox","apiVersion":"agents.x-k8s.io/v1beta1","spec":{"operatingMode":"Suspended","Service":true},"status":{"nodeName":"n","podIPs":null}}]}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":"u","desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":[{"kind":"Sandbox","apiVersion":"agents.x-k8s.io/v1beta1","metadata":{"annotations":{"api.agents.x-k8s.io/v1alpha1-sandbox-state":"{}"}}}]}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"desiredAPIVersion":[]}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"desiredAPIVersion":"x/v1"},"response":5}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":"u","desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":[]},"response":{"uid":"","convertedObjects":null,"result":{"metadata":{}}}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":"u","desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":[]},"response":{"result":{"code":"x"}}}`))
	f.Add([]byte(`{"kind":"ConversionReview","apiVersion":"apiextensions.k8s.io/v1","request":{"uid":1,"desiredAPIVersion":"agents.x-k8s.io/v1alpha1","objects":null}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		fast, ok := handleReviewFast(body)
		if !ok {
			return
		}
		var f, w review
		if err := json.Unmarshal(fast, &f); err != nil || f.Response == nil {
			t.Fatalf("fast path wrote %q: %v", fast, err)
		}
		for i, o := range f.Response.ConvertedObjects {
			var tm metav1.TypeMeta
			if err := json.Unmarshal(o.Raw, &tm); err != nil || spokeOf(tm) == nil {
				t.Fatalf("fast path wrote object %d as %q (%v)", i, o.Raw, err)
			}
		}
		// The fast path copies metadata and the shared spec and status
		// fields without decoding them, so it does not refuse what the
		// typed decode would (a string where an object belongs); the API
		// server only sends objects it stored, which decode. Where the
		// typed path converts, the two must agree.
		// The review itself the fast path must read as the typed path
		// does: never answer one the typed path refuses.
		typed, status, msg := handleReviewTyped(body)
		if status != http.StatusOK {
			t.Fatalf("fast path answered a review the typed path refuses (%d %s): %q", status, msg, body)
		}
		if err := json.Unmarshal(typed, &w); err != nil {
			t.Fatal(err)
		}
		if w.Response.Result.Status != metav1.StatusSuccess {
			return
		}
		if f.TypeMeta != w.TypeMeta || f.Response.UID != w.Response.UID || !cmp.Equal(f.Response.Result, w.Response.Result) {
			t.Fatalf("fast %s, typed %s, for %q", fast, typed, body)
		}
		if len(f.Response.ConvertedObjects) != len(w.Response.ConvertedObjects) {
			t.Fatalf("fast path converted %d objects, typed %d, for %q", len(f.Response.ConvertedObjects), len(w.Response.ConvertedObjects), body)
		}
		for i := range f.Response.ConvertedObjects {
			var tm metav1.TypeMeta
			if err := json.Unmarshal(w.Response.ConvertedObjects[i].Raw, &tm); err != nil {
				t.Fatal(err)
			}
			got, want := spokeOf(tm), spokeOf(tm)
			if err := json.Unmarshal(f.Response.ConvertedObjects[i].Raw, got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(w.Response.ConvertedObjects[i].Raw, want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, quantityByValue, fieldsV1ByValue, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("object %d (-typed,+fast):\n%s\nbody %q", i, diff, body)
			}
		}
	})
}

// jsonField is one field as encoding/json writes it.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFieldsOf are struct t's fields as encoding/json writes them: by
// their JSON names, inline and embedded structs flattened, skipped ones
// left out.
func jsonFieldsOf(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "" && (f.Anonymous || strings.Contains(opts, "inline")):
			out = append(out, jsonFieldsOf(f.Type)...)
		case name == "":
			out = append(out, jsonField{f.Name, f.Type})
		default:
			out = append(out, jsonField{name, f.Type})
		}
	}
	return out
}

// jsonFields are the JSON names of t's fields, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for _, f := range jsonFieldsOf(t) {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

// jsonShape renders the JSON form of t: field names and their shapes,
// recursively, so two versions' types compare by what they encode.
func jsonShape(t reflect.Type, seen map[reflect.Type]bool) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		return "[" + jsonShape(t.Elem(), seen) + "]"
	case reflect.Map:
		return "map[" + jsonShape(t.Elem(), seen) + "]"
	case reflect.Struct:
		if _, ok := reflect.New(t).Interface().(json.Marshaler); ok || seen[t] {
			return t.String() // its own encoding (Time, Quantity) or a cycle
		}
		seen[t] = true
		defer delete(seen, t)
		var fields []string
		for _, f := range jsonFieldsOf(t) {
			fields = append(fields, f.name+":"+jsonShape(f.typ, seen))
		}
		slices.Sort(fields)
		return "{" + strings.Join(fields, ",") + "}"
	default:
		return t.Kind().String()
	}
}

// fieldType is the type of the field with JSON name in struct t, nil
// when it has none.
func fieldType(t reflect.Type, name string) reflect.Type {
	for _, f := range jsonFieldsOf(t) {
		if f.name == name {
			return f.typ
		}
	}
	return nil
}

func sorted(lists ...[]string) []string {
	out := slices.Concat(lists...)
	slices.Sort(out)
	return out
}

// The fast path names every field of the hub's spec and status, and
// writes every field of the spoke's: a field added to the API later and
// left out here would be dropped silently (or, if case-folded, read as
// another), so this fails until the fast path says what to do with it.
func TestFastPathKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		name       string
		hub, spoke reflect.Type
		hubKeys    []string
		spokeKeys  []string // the hub keys copied, plus those derived
	}{
		{"Sandbox spec", reflect.TypeFor[agentsv1beta1.SandboxSpec](), reflect.TypeFor[agentsv1alpha1.SandboxSpec](),
			sandboxSpecKeys, sorted(sandboxSpecKeys[1:], []string{"replicas"})},
		{"Sandbox status", reflect.TypeFor[agentsv1beta1.SandboxStatus](), reflect.TypeFor[agentsv1alpha1.SandboxStatus](),
			sandboxStatusKeys, sorted(sandboxStatusKeys[:5], []string{"replicas"})},
		{"claim spec", reflect.TypeFor[extv1beta1.SandboxClaimSpec](), reflect.TypeFor[extv1alpha1.SandboxClaimSpec](),
			claimSpecKeys, sorted(claimSpecKeys[1:4], []string{"sandboxTemplateRef", "warmpool"})},
		{"claim status", reflect.TypeFor[extv1beta1.SandboxClaimStatus](), reflect.TypeFor[extv1alpha1.SandboxClaimStatus](),
			claimStatusKeys, sorted(claimStatusKeys)},
	} {
		if got, want := sorted(c.hubKeys), jsonFields(c.hub); !slices.Equal(got, want) {
			t.Errorf("%s: the fast path reads %v, v1beta1 has %v", c.name, got, want)
		}
		if got, want := c.spokeKeys, jsonFields(c.spoke); !slices.Equal(got, want) {
			t.Errorf("%s: the fast path writes %v, v1alpha1 has %v", c.name, got, want)
		}
		// What it copies must encode the same in both versions.
		for _, k := range c.hubKeys {
			hub, spoke := fieldType(c.hub, k), fieldType(c.spoke, k)
			if spoke == nil {
				continue // read or dropped, not copied
			}
			if h, s := jsonShape(hub, map[reflect.Type]bool{}), jsonShape(spoke, map[reflect.Type]bool{}); h != s {
				t.Errorf("%s.%s is copied, but its JSON differs:\nv1beta1  %s\nv1alpha1 %s", c.name, k, h, s)
			}
		}
	}
}

// TestHandleReviewCountsPaths: agent_sandbox_conversion_reviews_total
// counts each answered review once, under the path that answered it.
func TestHandleReviewCountsPaths(t *testing.T) {
	fast, typed := counterValue(t, fastReviews), counterValue(t, typedReviews)
	if _, status, msg := HandleReview(reviewOf(t, "apiextensions.k8s.io/v1", sandboxSpoke, poolMemberJSON)); status != http.StatusOK {
		t.Fatalf("%d %s", status, msg)
	}
	if _, status, _ := HandleReview([]byte(`{"kind":"ConversionReview"}`)); status != http.StatusBadRequest {
		t.Fatalf("a review without apiVersion: %d, want 400", status)
	}
	if _, status, msg := HandleReview(reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1beta1", alphaSandbox)); status != http.StatusOK {
		t.Fatalf("%d %s", status, msg)
	}
	if got := counterValue(t, fastReviews) - fast; got != 1 {
		t.Errorf("fast reviews counted %v, want 1", got)
	}
	if got := counterValue(t, typedReviews) - typed; got != 2 {
		t.Errorf("typed reviews counted %v, want 2 (a refused one and a conversion to v1beta1)", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
