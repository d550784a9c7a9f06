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

package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/expected.md from the fixture")

// fixtureDirs are two groups: a kind with every field shape, and a kind of
// another group that reuses one of its types.
var fixtureDirs = []string{"testdata/src/a/v1", "testdata/src/b/v1"}

const (
	fixtureModule = "example.com/fixture"
	fixtureCRDs   = "testdata/crds"
)

func TestGolden(t *testing.T) {
	got, err := run(fixtureModule, fixtureCRDs, "v1.37", fixtureDirs)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/expected.md", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/expected.md")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("reference (-want,+got):\n%s", diff)
	}
	again, err := run(fixtureModule, fixtureCRDs, "v1.37", fixtureDirs)
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Error("two runs on the same input differ")
	}
}

// TestRefusals checks the generator stops, naming the place, rather than
// write a reference that is incomplete or wrong somewhere.
func TestRefusals(t *testing.T) {
	tests := map[string]struct {
		mutate  func(t *testing.T, pkgs []*goPackage, crds crdSet)
		wantErr string
	}{
		"undocumented field": {
			mutate: func(t *testing.T, pkgs []*goPackage, _ crdSet) {
				pkgs[0].types["WidgetSpec"].fields[1].doc = ""
			},
			wantErr: "example.com/fixture/testdata/src/a/v1.WidgetSpec.Count",
		},
		"field missing from the CRD": {
			mutate: func(t *testing.T, _ []*goPackage, crds crdSet) {
				spec := crds["a.example.com"]["Widget"].Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
				delete(spec.Properties, "labels")
			},
			wantErr: "Widget.spec.labels: no such property in the CRD schema",
		},
		"shared type validated differently": {
			mutate: func(t *testing.T, _ []*goPackage, crds crdSet) {
				root := crds["a.example.com"]["Widget"].Spec.Versions[0].Schema.OpenAPIV3Schema
				status := root.Properties["status"]
				part := status.Properties["parts"].Items.Schema
				name := part.Properties["name"]
				name.MaxLength = nil
				part.Properties["name"] = name
			},
			wantErr: "type v1.Part is described differently at Widget.spec.parts and at Widget.status.parts",
		},
		"kind without a CRD version": {
			mutate: func(t *testing.T, _ []*goPackage, crds crdSet) {
				crds["b.example.com"]["Gadget"].Spec.Versions[0].Name = "v2"
			},
			wantErr: "CRD gadgets.b.example.com has no version v1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var pkgs []*goPackage
			for _, dir := range fixtureDirs {
				p, err := loadPackage(dir, fixtureModule+"/"+dir)
				if err != nil {
					t.Fatal(err)
				}
				pkgs = append(pkgs, p)
			}
			crds, err := loadCRDs(fixtureCRDs)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(t, pkgs, crds)
			_, err = newGenerator(pkgs, crds, "v1.37").generate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
