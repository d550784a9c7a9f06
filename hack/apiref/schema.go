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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdSet indexes the generated CRDs by group and kind. Defaults, required
// fields and validation come from here rather than from the Go markers:
// the CRD is what the API server enforces, after controller-gen has
// applied its own rules (type-level enums, omitempty, inline merging) and
// crdpostprocess its additions, so the reference cannot drift from it by
// re-implementing them.
type crdSet map[string]map[string]*apiextensionsv1.CustomResourceDefinition

func loadCRDs(dir string) (crdSet, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	set := crdSet{}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var probe struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if probe.Kind != "CustomResourceDefinition" {
			continue // kustomization.yaml
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if set[crd.Spec.Group] == nil {
			set[crd.Spec.Group] = map[string]*apiextensionsv1.CustomResourceDefinition{}
		}
		set[crd.Spec.Group][crd.Spec.Names.Kind] = crd
	}
	return set, nil
}

func (s crdSet) version(group, kind, version string) (*apiextensionsv1.CustomResourceDefinition, *apiextensionsv1.CustomResourceDefinitionVersion, error) {
	crd := s[group][kind]
	if crd == nil {
		return nil, nil, fmt.Errorf("no CRD for %s in group %s", kind, group)
	}
	for i := range crd.Spec.Versions {
		if v := &crd.Spec.Versions[i]; v.Name == version {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				return nil, nil, fmt.Errorf("CRD %s version %s has no schema", crd.Name, version)
			}
			return crd, v, nil
		}
	}
	return nil, nil, fmt.Errorf("CRD %s has no version %s", crd.Name, version)
}

// child returns the schema of property name, nil if there is none.
func child(s *apiextensionsv1.JSONSchemaProps, name string) *apiextensionsv1.JSONSchemaProps {
	if s == nil {
		return nil
	}
	if p, ok := s.Properties[name]; ok {
		return &p
	}
	return nil
}

// elem descends through arrays and maps to the schema of the values a
// Go element type describes.
func elem(s *apiextensionsv1.JSONSchemaProps) *apiextensionsv1.JSONSchemaProps {
	switch {
	case s == nil:
		return nil
	case s.Items != nil && s.Items.Schema != nil:
		return s.Items.Schema
	case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return s.AdditionalProperties.Schema
	}
	return nil
}

// renderDefault shows a default as a user writes it in YAML: strings bare,
// anything else as JSON.
func renderDefault(s *apiextensionsv1.JSONSchemaProps) string {
	if s == nil || s.Default == nil {
		return ""
	}
	return "`" + jsonValue(s.Default.Raw) + "`"
}

func jsonValue(raw []byte) string {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return str
	}
	return string(raw)
}

// renderValidation lists what the API server checks on one value, in a
// fixed order so the output is stable.
func renderValidation(s *apiextensionsv1.JSONSchemaProps) []string {
	if s == nil {
		return nil
	}
	var out []string
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, e := range s.Enum {
			vals = append(vals, "`"+jsonValue(e.Raw)+"`")
		}
		out = append(out, "one of "+strings.Join(vals, ", "))
	}
	bound := func(v *float64, exclusive bool, incl, excl string) {
		if v == nil {
			return
		}
		op := incl
		if exclusive {
			op = excl
		}
		out = append(out, op+" "+strconv.FormatFloat(*v, 'f', -1, 64))
	}
	bound(s.Minimum, s.ExclusiveMinimum, "≥", ">")
	bound(s.Maximum, s.ExclusiveMaximum, "≤", "<")
	count := func(v *int64, what, op string) {
		if v != nil {
			out = append(out, fmt.Sprintf("%s %s %d", what, op, *v))
		}
	}
	count(s.MinLength, "length", "≥")
	count(s.MaxLength, "length", "≤")
	count(s.MinItems, "items", "≥")
	count(s.MaxItems, "items", "≤")
	count(s.MinProperties, "entries", "≥")
	count(s.MaxProperties, "entries", "≤")
	if s.UniqueItems {
		out = append(out, "unique items")
	}
	if s.Pattern != "" {
		out = append(out, "matches `"+s.Pattern+"`")
	}
	if s.XListType != nil && *s.XListType == "map" {
		keys := append([]string(nil), s.XListMapKeys...)
		sort.Strings(keys)
		out = append(out, "unique by "+code(strings.Join(keys, ", ")))
	}
	if s.XListType != nil && *s.XListType == "set" {
		out = append(out, "unique items")
	}
	for _, r := range s.XValidations {
		rule := "rule " + code(r.Rule)
		switch {
		case r.Message != "":
			rule += ": " + escapeText(r.Message)
		case r.MessageExpression != "":
			rule += ": message " + code(r.MessageExpression)
		}
		out = append(out, rule)
	}
	return out
}

// code is a code span that survives any backticks inside it.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}
