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
	"testing"
)

// member is one object member as encoding/json reads it.
type member struct {
	key   string
	value string // compacted
}

// decodedMembers reads the members of the object b with encoding/json.
func decodedMembers(t *testing.T, b []byte) []member {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v", err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, member{tok.(string), compact(t, raw)})
	}
	return out
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compacting %q: %v", b, err)
	}
	return buf.String()
}

// FuzzMembersMatchesEncodingJSON: for every valid JSON object, members
// finds the members encoding/json finds, each key as written (equal to
// the decoded key when it has no escapes) and each value whole; and
// elements the elements of every array value.
func FuzzMembersMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte(poolMemberJSON))
	f.Add([]byte(` { "a" : [ 1 , "x\"]}" , { } , [ ] , null ] , "b\u0041" :-1.5e3,"c":true, "d" : "\\" } `))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":{"b":{"c":[[[]]]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		start := skipSpace(b, 0)
		if !json.Valid(b) || start == len(b) || b[start] != '{' {
			return
		}
		want := decodedMembers(t, b[start:])
		var got []member
		ok := members(b, start, func(key, value []byte) bool {
			var k string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				t.Fatalf("key %q is not a JSON string's contents: %v", key, err)
			}
			if plainKey(key) && k != string(key) {
				t.Fatalf("plain key %q decodes to %q", key, k)
			}
			got = append(got, member{k, compact(t, value)})
			if value[0] == '[' {
				var n int
				var elems []json.RawMessage
				if err := json.Unmarshal(value, &elems); err != nil {
					t.Fatal(err)
				}
				if !elements(value, 0, func(e []byte) bool {
					if n >= len(elems) || compact(t, e) != compact(t, elems[n]) {
						t.Fatalf("element %d of %s: %q", n, value, e)
					}
					n++
					return true
				}) || n != len(elems) {
					t.Fatalf("elements of %s: read %d of %d", value, n, len(elems))
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("members refused a valid object %q", b)
		}
		if len(got) != len(want) {
			t.Fatalf("members found %d members, encoding/json %d, in %q", len(got), len(want), b)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("member %d: %+v, encoding/json %+v, in %q", i, got[i], want[i], b)
			}
		}
	})
}
