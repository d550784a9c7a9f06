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
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergePatch(t *testing.T) {
	type obj struct {
		A string            `json:"a,omitempty"`
		B map[string]string `json:"b,omitempty"`
		C []string          `json:"c,omitempty"`
	}
	tests := map[string]struct {
		original, modified obj
		want               string // "" means no patch
	}{
		"equal": {
			original: obj{A: "x", B: map[string]string{"k": "v"}},
			modified: obj{A: "x", B: map[string]string{"k": "v"}},
		},
		"changed scalar": {
			original: obj{A: "x"}, modified: obj{A: "y"},
			want: `{"a":"y"}`,
		},
		"removed field becomes null": {
			original: obj{A: "x", C: []string{"1"}}, modified: obj{A: "x"},
			want: `{"c":null}`,
		},
		"nested map keys": {
			original: obj{B: map[string]string{"keep": "1", "drop": "2", "change": "3"}},
			modified: obj{B: map[string]string{"keep": "1", "change": "4", "add": "5"}},
			want:     `{"b":{"add":"5","change":"4","drop":null}}`,
		},
		"list replaced whole": {
			original: obj{C: []string{"1", "2"}}, modified: obj{C: []string{"1", "3"}},
			want: `{"c":["1","3"]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			patch, ok, err := MergePatch(tc.original, tc.modified)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("patch %s for equal objects", patch)
				}
				return
			}
			var got, want any
			if err := json.Unmarshal(patch, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("patch (-want,+got):\n%s", diff)
			}
		})
	}
}
