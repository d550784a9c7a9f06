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

package api

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// A crdRule is one validation rule of a served CRD version's schema, read
// from the generated YAML in manifests/crd: the rules are enumerated from
// what the API server enforces, not from what the Go markers meant.
type crdRule struct {
	kind, version string
	// steps lead from the object's root to the field: property names,
	// "[*]" for a list's items and "{*}" for a map's values. For
	// "required", the last step is the required property.
	steps []string
	// keyword is the schema keyword: required, enum, pattern, minimum,
	// maximum, minLength, maxLength, minItems, maxItems, format, cel; or
	// type, listed for the project's own fields only.
	keyword string
	// schema is the field's schema; for "required", the parent's.
	schema *apiextensionsv1.JSONSchemaProps
	// root is the version's whole schema.
	root *apiextensionsv1.JSONSchemaProps
}

func (r crdRule) path() string {
	var b strings.Builder
	for _, s := range r.steps {
		if s != "[*]" && s != "{*}" {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// id names a rule in the corpus, e.g.
// "SandboxWarmPool/v1beta1 .spec.replicas minimum".
func (r crdRule) id() string {
	return fmt.Sprintf("%s/%s %s %s", r.kind, r.version, r.path(), r.keyword)
}

// status reports whether the rule is only reachable through the status
// subresource (a create or update of the object resets status).
func (r crdRule) status() bool { return r.steps[0] == "status" }

// embeddedPrefixes are where the CRDs embed Kubernetes' own types
// (PodSpec, PersistentVolumeClaimSpec, NetworkPolicy rules,
// metav1.Condition): hundreds of rules that upstream's markers put there.
// The generated sweep covers each of them; every other rule is the
// project's and needs an entry written by hand in schemaCorpus.
var embeddedPrefixes = []string{
	".spec.podTemplate.spec.",
	".spec.volumeClaimTemplates[*].spec.",
	".spec.networkPolicy.ingress",
	".spec.networkPolicy.egress",
	".status.conditions[*].",
}

func (r crdRule) embedded() bool {
	p := r.path()
	for _, prefix := range embeddedPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// loadCRDs reads the generated CRDs.
func loadCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "manifests", "crd", "*_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in manifests/crd (%v)", err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		crds = append(crds, crd)
	}
	return crds
}

// crdRules lists every rule of every served version of the CRDs.
func crdRules(t *testing.T) []crdRule {
	t.Helper()
	var rules []crdRule
	for _, crd := range loadCRDs(t) {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			root := v.Schema.OpenAPIV3Schema
			var walk func(s *apiextensionsv1.JSONSchemaProps, steps []string)
			walk = func(s *apiextensionsv1.JSONSchemaProps, steps []string) {
				add := func(keyword string, steps []string) {
					rules = append(rules, crdRule{kind: crd.Spec.Names.Kind, version: v.Name,
						steps: slices.Clone(steps), keyword: keyword, schema: s, root: root})
				}
				for _, name := range s.Required {
					add("required", append(steps, name))
				}
				if len(steps) == 0 {
					// apiVersion, kind and metadata are the API server's own.
					for _, name := range []string{"spec", "status"} {
						if p, ok := s.Properties[name]; ok {
							walk(&p, []string{name})
						}
					}
					return
				}
				for range s.XValidations {
					add("cel", steps)
				}
				for keyword, set := range map[string]bool{
					"enum": len(s.Enum) > 0, "pattern": s.Pattern != "",
					"minimum": s.Minimum != nil, "maximum": s.Maximum != nil,
					"minLength": s.MinLength != nil, "maxLength": s.MaxLength != nil,
					"minItems": s.MinItems != nil, "maxItems": s.MaxItems != nil,
					"minProperties": s.MinProperties != nil, "maxProperties": s.MaxProperties != nil,
					"multipleOf": s.MultipleOf != nil, "uniqueItems": s.UniqueItems,
					// Numeric formats (int32, int64, double) only document
					// the Go type; the API server checks string formats.
					"format": s.Format != "" && s.Type == "string",
				} {
					if set {
						add(keyword, steps)
					}
				}
				if s.Type != "" {
					r := crdRule{steps: steps}
					if !r.embedded() {
						add("type", steps)
					}
				}
				for name, p := range s.Properties { //nolint:gocritic // map values are not addressable: walk reads a copy
					walk(&p, append(slices.Clone(steps), name))
				}
				if s.Items != nil && s.Items.Schema != nil {
					walk(s.Items.Schema, append(slices.Clone(steps), "[*]"))
				}
				if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
					walk(s.AdditionalProperties.Schema, append(slices.Clone(steps), "{*}"))
				}
			}
			walk(root, nil)
		}
	}
	slices.SortFunc(rules, func(a, b crdRule) int { return strings.Compare(a.id(), b.id()) })
	return rules
}

// mapKey is the key under which a rule inside a map's values is tried.
const mapKey = "k"

// field is the field path the API server names for the rule's field.
func (r crdRule) field() string {
	var b strings.Builder
	for _, s := range r.steps {
		switch s {
		case "[*]":
			b.WriteString("[0]")
		case "{*}":
			b.WriteString("." + mapKey)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

// patternSamples are tried, in order, as the smallest value of a string
// with a pattern; a new pattern none of them matches fails the sweep
// until a sample is added.
var patternSamples = []string{"a", "1", "A"}

func enumValue(t *testing.T, s *apiextensionsv1.JSONSchemaProps) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(s.Enum[0].Raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// minimal returns the smallest value schema s accepts: required
// properties only, empty lists, the first enum value, the minimum.
func minimal(t *testing.T, s *apiextensionsv1.JSONSchemaProps) any {
	t.Helper()
	if len(s.Enum) > 0 {
		return enumValue(t, s)
	}
	switch s.Type {
	case "object":
		m := map[string]any{}
		for _, name := range s.Required {
			p := s.Properties[name]
			m[name] = minimal(t, &p)
		}
		return m
	case "array":
		return []any{}
	case "string":
		return minimalString(t, s, 0)
	case "integer":
		if s.Minimum != nil {
			return int64(math.Ceil(*s.Minimum))
		}
		return int64(0)
	case "number":
		return float64(0)
	case "boolean":
		return false
	}
	if s.XIntOrString {
		return int64(1)
	}
	return map[string]any{} // x-kubernetes-preserve-unknown-fields
}

// minimalString is the smallest valid string of s, made distinct by i
// where list keys must differ.
func minimalString(t *testing.T, s *apiextensionsv1.JSONSchemaProps, i int) string {
	t.Helper()
	if s.Format == "date-time" {
		return fmt.Sprintf("2026-01-02T15:04:%02dZ", i%60)
	}
	for _, sample := range patternSamples {
		v := sample
		if i > 0 {
			v = fmt.Sprintf("%s%d", sample, i)
		}
		if s.MinLength != nil && int64(len(v)) < *s.MinLength {
			v += strings.Repeat(sample, int(*s.MinLength)-len(v))
		}
		if s.Pattern == "" || regexp.MustCompile(s.Pattern).MatchString(v) {
			return v
		}
	}
	t.Fatalf("no sample in patternSamples matches pattern %q: add one", s.Pattern)
	return ""
}

// distinctItem is the i-th of items that a list-map or set list accepts
// side by side: the key fields differ.
func distinctItem(t *testing.T, list *apiextensionsv1.JSONSchemaProps, i int) any {
	t.Helper()
	items := list.Items.Schema
	switch items.Type {
	case "string":
		return minimalString(t, items, i)
	case "integer":
		return int64(i)
	}
	item, ok := minimal(t, items).(map[string]any)
	if !ok {
		t.Fatalf("no distinct items for a list of %s", items.Type)
	}
	for _, key := range list.XListMapKeys {
		p := items.Properties[key]
		switch p.Type {
		case "string":
			item[key] = minimalString(t, &p, i)
		case "integer":
			item[key] = int64(i)
		default:
			t.Fatalf("list-map key %s of type %s", key, p.Type)
		}
	}
	return item
}

// violation returns a value of the field's schema that breaks the rule,
// or remove for a required property.
func (r crdRule) violation(t *testing.T) (value any, remove bool) {
	t.Helper()
	s := r.schema
	switch r.keyword {
	case "required":
		return nil, true
	case "enum":
		return "NotInTheEnum", false
	case "pattern":
		v := "!not valid!"
		if regexp.MustCompile(s.Pattern).MatchString(v) {
			t.Fatalf("%q matches pattern %q", v, s.Pattern)
		}
		return v, false
	case "minimum":
		return int64(math.Ceil(*s.Minimum)) - 1, false
	case "maximum":
		return int64(math.Floor(*s.Maximum)) + 1, false
	case "minLength":
		return strings.Repeat("a", int(*s.MinLength)-1), false
	case "maxLength":
		// Longer than allowed but otherwise valid: the sample repeated.
		return strings.Repeat(minimalString(t, s, 0)[:1], int(*s.MaxLength)+1), false
	case "maxItems":
		items := make([]any, *s.MaxItems+1)
		for i := range items {
			items[i] = distinctItem(t, s, i)
		}
		return items, false
	case "format":
		if s.Format != "date-time" {
			t.Fatalf("no violation known for format %q: add one", s.Format)
		}
		return "tomorrow", false
	case "type":
		if s.Type == "string" {
			return int64(7), false
		}
		return "seven", false
	}
	t.Fatalf("no violation known for keyword %q: add one (or an entry in schemaCorpus)", r.keyword)
	return nil, false
}

// with returns v (a value of schema s) with the value at steps replaced
// by leaf's result, creating what is missing on the way with minimal
// values; remove deletes the property instead.
func with(t *testing.T, v any, s *apiextensionsv1.JSONSchemaProps, steps []string, leaf func() (any, bool)) (any, bool) {
	t.Helper()
	if len(steps) == 0 {
		return leaf()
	}
	switch step := steps[0]; step {
	case "[*]":
		list, _ := v.([]any)
		if len(list) == 0 {
			list = []any{minimal(t, s.Items.Schema)}
		}
		item, remove := with(t, list[0], s.Items.Schema, steps[1:], leaf)
		if remove {
			t.Fatalf("cannot remove a list item")
		}
		list[0] = item
		return list, false
	default:
		var child *apiextensionsv1.JSONSchemaProps
		key := mapKey
		if step == "{*}" {
			child = s.AdditionalProperties.Schema
		} else {
			p := s.Properties[step]
			child, key = &p, step
		}
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		cur, ok := m[key]
		if !ok {
			cur = minimal(t, child)
		}
		nv, remove := with(t, cur, child, steps[1:], leaf)
		if remove {
			delete(m, key)
		} else {
			m[key] = nv
		}
		return m, false
	}
}
