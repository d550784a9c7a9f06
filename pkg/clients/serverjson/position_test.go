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

package serverjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

func TestInterpretMatchesStock(t *testing.T) {
	sandbox := string(asServerWrites(t, pooledSandbox()))
	for _, tc := range []struct {
		name, data string
		// positional is whether the data is read by position; all other
		// data must go to the stock MetaFactory.
		positional bool
	}{
		{"custom resource as the API server writes it", sandbox, true},
		{"typed object (Status) as the API server writes it", `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"Conflict","code":409}`, true},
		{"core group", `{"apiVersion":"v1","kind":"Pod"}`, true},
		{"space around members", " {\n \"apiVersion\" : \"agents.x-k8s.io/v1beta1\" ,\t\"kind\":\"Sandbox\" }", true},
		{"kind third", `{"apiVersion":"v1","metadata":{"name":"x"},"kind":"Pod"}`, false},
		{"kind absent", `{"apiVersion":"v1","metadata":{}}`, false},
		{"no type meta (a watch envelope)", `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod"}}`, false},
		{"escaped kind", `{"apiVersion":"v1","kind":"P\u006fd"}`, false},
		{"non-ASCII kind", `{"apiVersion":"v1","kind":"Pöd"}`, false},
		{"kind not a string", `{"apiVersion":"v1","kind":3}`, false},
		{"same key twice", `{"kind":"Pod","kind":"Node","apiVersion":"v1"}`, false},
		{"key in another case", `{"Kind":"Pod","apiVersion":"v1"}`, false},
		{"apiVersion that does not parse", `{"apiVersion":"a/b/c","kind":"Pod"}`, false},
		{"array", `[{"apiVersion":"v1","kind":"Pod"}]`, false},
		{"not JSON", `apiVersion: v1`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			if _, ok := LeadingTypeMeta(data); ok != tc.positional {
				t.Errorf("read by position: %v, want %v", ok, tc.positional)
			}
			want, wantErr := kjson.DefaultMetaFactory.Interpret(data)
			got, err := MetaFactory.Interpret(data)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, stock error %v", err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("group, version and kind differ from the stock MetaFactory's (-stock +positional):\n%s", diff)
			}
		})
	}
}

// FuzzInterpret holds the positional read to the stock MetaFactory for
// every input it takes that the API server could write: valid JSON
// without a repeated top-level member (encoding/json matches members
// case-insensitively and keeps the last).
func FuzzInterpret(f *testing.F) {
	f.Add(asServerWrites(f, pooledSandbox()))
	f.Add([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure"}`))
	f.Add([]byte(`{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxClaim","spec":{}}`))
	f.Add([]byte(`{"apiVersion":"/v1","kind":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := LeadingTypeMeta(data)
		if !ok || !json.Valid(data) || repeatsMember(data) {
			return
		}
		want, err := kjson.DefaultMetaFactory.Interpret(data)
		if err != nil {
			t.Fatalf("read by position as %v; the stock MetaFactory fails: %v", got, err)
		}
		if *got != *want {
			t.Fatalf("read by position as %v; the stock MetaFactory reads %v", got, want)
		}
	})
}

// repeatsMember reports whether the JSON object data names a top-level
// member twice, comparing names as encoding/json matches them.
func repeatsMember(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		name := strings.ToLower(tok.(string))
		if seen[name] {
			return true
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

func TestSplitWatchEvent(t *testing.T) {
	object := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a}"}}`
	for _, tc := range []struct {
		name, frame string
		wantType    string
		wantObject  string
	}{
		{"as the API server writes it", `{"type":"MODIFIED","object":` + object + "}\n", "MODIFIED", object},
		{"without the newline", `{"type":"ADDED","object":` + object + `}`, "ADDED", object},
		{"bookmark", `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}`, "BOOKMARK", `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}`},
		{"space inside the envelope", `{ "type":"ADDED","object":` + object + `}`, "", ""},
		{"members in the other order", `{"object":` + object + `,"type":"ADDED"}`, "", ""},
		{"lower-case type", `{"type":"added","object":` + object + `}`, "", ""},
		{"empty type", `{"type":"","object":` + object + `}`, "", ""},
		{"null object", `{"type":"DELETED","object":null}`, "", ""},
		{"space before the envelope's end", `{"type":"ADDED","object":` + object + ` }`, "", ""},
		{"truncated", `{"type":"ADDED","object":{"apiVersion":"v1"`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eventType, obj, ok := SplitWatchEvent([]byte(tc.frame))
			if ok != (tc.wantType != "") {
				t.Fatalf("split: %v, want %v", ok, tc.wantType != "")
			}
			if eventType != tc.wantType || string(obj) != tc.wantObject {
				t.Errorf("split into %q, %s; want %q, %s", eventType, obj, tc.wantType, tc.wantObject)
			}
		})
	}
}

// FuzzWatchEventDecode holds the positional split to the stock decode of
// the envelope: whenever it takes a frame whose object is one JSON
// value, the stock serializer decodes the same event from it. (When the
// object it cuts out is not one value, as for an envelope with a third
// member, which the API server never writes, the object's decode fails.)
func FuzzWatchEventDecode(f *testing.F) {
	f.Add(watchFrame("ADDED", asServerWrites(f, pooledSandbox())))
	f.Add([]byte(`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","code":410}}`))
	f.Add([]byte(`{"type":"ADDED","object":{"a":1},"type":"DELETED","object":{"b":2}}`))
	stock := stockJSON(f).StreamSerializer.Serializer
	f.Fuzz(func(t *testing.T, frame []byte) {
		eventType, object, ok := SplitWatchEvent(frame)
		if !ok || !json.Valid(object) {
			return
		}
		var want metav1.WatchEvent
		if _, _, err := stock.Decode(frame, nil, &want); err != nil {
			t.Fatalf("split into %q, %s; the stock decode fails: %v", eventType, object, err)
		}
		var wantObject bytes.Buffer
		if err := json.Compact(&wantObject, want.Object.Raw); err != nil {
			t.Fatal(err)
		}
		var gotObject bytes.Buffer
		if err := json.Compact(&gotObject, object); err != nil {
			t.Fatal(err)
		}
		if eventType != want.Type || !bytes.Equal(gotObject.Bytes(), wantObject.Bytes()) {
			t.Fatalf("split into %q, %s; the stock decode reads %q, %s", eventType, object, want.Type, want.Object.Raw)
		}
	})
}
