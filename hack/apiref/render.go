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
	"fmt"
	"go/ast"
	"go/doc/comment"
	"maps"
	"slices"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Import paths with a meaning of their own in the reference.
const (
	metav1Path   = "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sAPIPrefix = "k8s.io/api/"
)

// generator walks each kind's Go type and its CRD schema together: the
// Go side gives names, types and prose, the schema gives what the API
// server enforces at that place.
type generator struct {
	pkgs     []*goPackage
	byPath   map[string]*goPackage
	crds     crdSet
	k8sDocs  string // the Kubernetes API reference, ending in "#"
	sections map[*goType]*section
	seen     []*goType // first-reference order
	// undocumented are the fields without a doc comment: the reference
	// promises a description for every field.
	undocumented map[string]bool
}

// section is what the reference says about one named type.
type section struct {
	t       *goType
	path    string // where it was first reached, for error messages
	rows    []row
	usedBy  []*goType
	kind    *kindInfo
	root    *goType // the kind whose walk reached it first
	version *apiextensionsv1.CustomResourceDefinitionVersion
	crd     *apiextensionsv1.CustomResourceDefinition
}

type row struct {
	field, typ, required, def, validation, desc string
}

// kindInfo is what TypeMeta stands for at the root of a kind.
type kindInfo struct {
	apiVersion, kind string
}

// ref is a named type of ours reached through a field, with the schema
// that describes its values there.
type ref struct {
	t    *goType
	node *apiextensionsv1.JSONSchemaProps
	path string
}

func newGenerator(pkgs []*goPackage, crds crdSet, k8sDocsVersion string) *generator {
	g := &generator{
		pkgs:     pkgs,
		byPath:   map[string]*goPackage{},
		crds:     crds,
		k8sDocs:  "https://kubernetes.io/docs/reference/generated/kubernetes-api/" + k8sDocsVersion + "/#",
		sections: map[*goType]*section{},

		undocumented: map[string]bool{},
	}
	for _, p := range pkgs {
		g.byPath[p.importPath] = p
	}
	return g
}

// generate renders the whole reference.
func (g *generator) generate() (string, error) {
	for _, p := range g.pkgs {
		for _, k := range kinds(p) {
			crd, v, err := g.crds.version(p.group, k.name, p.version)
			if err != nil {
				return "", err
			}
			info := &kindInfo{apiVersion: p.group + "/" + p.version, kind: k.name}
			if err := g.walk(ref{t: k, node: v.Schema.OpenAPIV3Schema, path: k.name}, nil, k, info); err != nil {
				return "", err
			}
			s := g.sections[k]
			s.crd, s.version = crd, v
		}
	}
	if len(g.undocumented) > 0 {
		names := slices.Sorted(maps.Keys(g.undocumented))
		return "", fmt.Errorf("fields without a doc comment:\n  %s", strings.Join(names, "\n  "))
	}
	return g.render(), nil
}

// kinds lists a package's kinds by name.
func kinds(p *goPackage) []*goType {
	var out []*goType
	for _, name := range p.order {
		if t := p.types[name]; t.isKind() {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// walk describes r.t as found at r.node, then the types its fields reach.
// A type reached again must look the same there: a shared type whose
// schema differs by place would make its one section wrong somewhere.
func (g *generator) walk(r ref, from, root *goType, info *kindInfo) error {
	if s := g.sections[r.t]; s != nil {
		if from != nil && !slices.Contains(s.usedBy, from) {
			s.usedBy = append(s.usedBy, from)
		}
		if r.t.isEnum {
			return nil
		}
		rows, _, err := g.rows(r.t, r.node, r.path, info)
		if err != nil {
			return err
		}
		if !slices.Equal(rows, s.rows) {
			return fmt.Errorf("type %s.%s is described differently at %s and at %s", r.t.pkg.version, r.t.name, s.path, r.path)
		}
		return nil
	}
	s := &section{t: r.t, path: r.path, kind: info, root: root}
	if from != nil {
		s.usedBy = []*goType{from}
	}
	g.sections[r.t] = s
	g.seen = append(g.seen, r.t)
	if r.t.isEnum {
		return nil
	}
	rows, refs, err := g.rows(r.t, r.node, r.path, info)
	if err != nil {
		return err
	}
	s.rows = rows
	for _, c := range refs {
		if err := g.walk(c, r.t, root, nil); err != nil {
			return err
		}
	}
	return nil
}

// rows describes the fields of struct t at schema node, inlined structs
// flattened in as they are on the wire.
func (g *generator) rows(t *goType, node *apiextensionsv1.JSONSchemaProps, path string, info *kindInfo) ([]row, []ref, error) {
	if t.fields == nil {
		return nil, nil, fmt.Errorf("%s: %s is not a struct", path, t.name)
	}
	var rows []row
	var refs []ref
	for _, f := range t.fields {
		if f.inline {
			if g.isMeta(t, f.typ, "TypeMeta") {
				if info == nil {
					return nil, nil, fmt.Errorf("%s: TypeMeta outside a kind", path)
				}
				rows = append(rows,
					row{field: "`apiVersion`", typ: "string", required: "required", desc: "`" + info.apiVersion + "`"},
					row{field: "`kind`", typ: "string", required: "required", desc: "`" + info.kind + "`"})
				continue
			}
			inner, err := g.resolve(t, f.typ)
			if err != nil || inner == nil || inner.fields == nil {
				return nil, nil, fmt.Errorf("%s: inline field %s must be a struct of ours", path, f.name)
			}
			r, c, err := g.rows(inner, node, path, nil)
			if err != nil {
				return nil, nil, err
			}
			rows = append(rows, r...)
			refs = append(refs, c...)
			continue
		}
		fpath := path + "." + f.jsonName
		prop := child(node, f.jsonName)
		if prop == nil {
			return nil, nil, fmt.Errorf("%s: no such property in the CRD schema (is the CRD stale?)", fpath)
		}
		typ, target, depth, err := g.typeText(t, f.typ)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", fpath, err)
		}
		desc := f.doc
		if desc == "" {
			switch {
			case g.isMeta(t, f.typ, "ObjectMeta"):
				desc = "Standard object metadata."
			case g.isMeta(t, f.typ, "ListMeta"):
				desc = "Standard list metadata."
			default:
				// Collected, not returned: one run lists every gap.
				g.undocumented[fmt.Sprintf("%s.%s.%s", t.pkg.importPath, t.name, f.name)] = true
			}
		}
		required := "optional"
		if slices.Contains(node.Required, f.jsonName) {
			required = "required"
		}
		valid := renderValidation(prop)
		elemNode := prop
		for range depth {
			elemNode = elem(elemNode)
			for _, v := range renderValidation(elemNode) {
				valid = append(valid, "each: "+v)
			}
		}
		if target != nil {
			if elemNode == nil {
				return nil, nil, fmt.Errorf("%s: the CRD schema has no element schema", fpath)
			}
			refs = append(refs, ref{t: target, node: elemNode, path: fpath})
		}
		rows = append(rows, row{
			field:      "`" + f.jsonName + "`",
			typ:        typ,
			required:   required,
			def:        renderDefault(prop),
			validation: strings.Join(valid, "<br>"),
			desc:       cell(markdown(desc, 0)),
		})
	}
	return rows, refs, nil
}

// isMeta reports whether e is metav1.<name> in the file that declares t.
func (g *generator) isMeta(t *goType, e ast.Expr, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && t.imports[x.Name] == metav1Path && sel.Sel.Name == name
}

// resolve finds the named type of ours that e names, nil for anything else.
func (g *generator) resolve(ctx *goType, e ast.Expr) (*goType, error) {
	switch x := e.(type) {
	case *ast.Ident:
		return ctx.pkg.types[x.Name], nil
	case *ast.StarExpr:
		return g.resolve(ctx, x.X)
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return nil, fmt.Errorf("unexpected selector %v", x)
		}
		if p := g.byPath[ctx.imports[id.Name]]; p != nil {
			t := p.types[x.Sel.Name]
			if t == nil {
				return nil, fmt.Errorf("%s.%s is not a struct or string type of %s", id.Name, x.Sel.Name, p.importPath)
			}
			return t, nil
		}
	}
	return nil, nil
}

// typeText renders a field's type, and returns the type of ours it holds
// (if any) with how many arrays or maps lie between the field and it.
func (g *generator) typeText(ctx *goType, e ast.Expr) (string, *goType, int, error) {
	switch x := e.(type) {
	case *ast.StarExpr:
		return g.typeText(ctx, x.X)
	case *ast.ArrayType:
		if x.Len != nil {
			return "", nil, 0, fmt.Errorf("fixed-size arrays are not an API type")
		}
		s, t, d, err := g.typeText(ctx, x.Elt)
		return "array of " + s, t, d + 1, err
	case *ast.MapType:
		k, _, _, err := g.typeText(ctx, x.Key)
		if err != nil {
			return "", nil, 0, err
		}
		s, t, d, err := g.typeText(ctx, x.Value)
		return "map of " + k + " to " + s, t, d + 1, err
	case *ast.Ident:
		if t := ctx.pkg.types[x.Name]; t != nil {
			return g.link(t), t, 0, nil
		}
		switch x.Name {
		case "string", "bool", "int32", "int64":
			return x.Name, nil, 0, nil
		}
		return "", nil, 0, fmt.Errorf("type %s is not an API type of %s", x.Name, ctx.pkg.importPath)
	case *ast.SelectorExpr:
		t, err := g.resolve(ctx, x)
		if err != nil {
			return "", nil, 0, err
		}
		if t != nil {
			return g.link(t), t, 0, nil
		}
		id := x.X.(*ast.Ident)
		path := ctx.imports[id.Name]
		if path == metav1Path && x.Sel.Name == "Time" {
			return "string (RFC 3339 time)", nil, 0, nil
		}
		anchor, err := k8sAnchor(path, x.Sel.Name)
		if err != nil {
			return "", nil, 0, err
		}
		return "[" + x.Sel.Name + "](" + g.k8sDocs + anchor + ")", nil, 0, nil
	}
	return "", nil, 0, fmt.Errorf("unsupported field type %T", e)
}

// k8sAnchor is a type's anchor in the Kubernetes API reference, whose
// group suffix is the API group with dots turned into dashes ("core" for
// the legacy group).
func k8sAnchor(path, name string) (string, error) {
	if path == metav1Path {
		return strings.ToLower(name) + "-v1-meta", nil
	}
	rest, ok := strings.CutPrefix(path, k8sAPIPrefix)
	group, version, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return "", fmt.Errorf("%s.%s: only k8s.io/api and metav1 types can be linked", path, name)
	}
	if group != "core" {
		group += "-k8s-io"
	}
	return strings.ToLower(name) + "-" + version + "-" + group, nil
}

func anchor(t *goType) string {
	return anchorOf(t.pkg) + "-" + strings.ToLower(t.name)
}

func anchorOf(p *goPackage) string {
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(p.group))
	return slug + "-" + p.version
}

func (g *generator) link(t *goType) string {
	return "[" + t.name + "](#" + anchor(t) + ")"
}

// markdown renders a Go doc comment as Markdown (escaping what Markdown
// would otherwise take for markup, such as "<name>").
func markdown(doc string, headingLevel int) string {
	var p comment.Parser
	pr := comment.Printer{HeadingLevel: headingLevel}
	return strings.TrimSpace(string(pr.Markdown(p.Parse(doc))))
}

// cell fits Markdown into one table cell.
func cell(md string) string {
	md = strings.ReplaceAll(md, "|", `\|`)
	md = strings.ReplaceAll(md, "\n\n", "<br><br>")
	return strings.ReplaceAll(md, "\n", "<br>")
}
