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
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// goPackage is one API package (pkg/apis/<group>/<version>) as its source
// declares it: the prose and structure of the reference come from here.
type goPackage struct {
	importPath string
	group      string // from +groupName
	version    string // the package name
	doc        string // package comment, markers stripped
	types      map[string]*goType
	order      []string // type names in source order (files sorted by name)
}

// goType is a named type of an API package.
type goType struct {
	name    string
	doc     string
	markers []string
	fields  []goField // nil unless a struct
	isEnum  bool      // a named string type
	values  []enumValue
	pkg     *goPackage
	imports map[string]string // the declaring file's import names → paths
}

type goField struct {
	name     string
	jsonName string // "" with inline
	inline   bool
	embedded bool
	doc      string
	typ      ast.Expr
}

type enumValue struct {
	value string
	doc   string
}

// isKind reports whether the type is a top-level resource: a root object
// with a generated client (list types have no +genclient).
func (t *goType) isKind() bool {
	return slices.Contains(t.markers, "+genclient") && slices.Contains(t.markers, "+kubebuilder:object:root=true")
}

// loadPackage parses the hand-written files of one API package. Generated
// files (zz_generated.*) and tests hold nothing the reference shows.
func loadPackage(dir, importPath string) (*goPackage, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	pkg := &goPackage{importPath: importPath, types: map[string]*goType{}}
	// Constants are matched to their types once every file is read: a
	// type and its values may sit in different files.
	type constSpec struct {
		typeName string
		value    enumValue
	}
	var consts []constSpec
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "zz_generated") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		pkg.version = f.Name.Name
		if f.Doc != nil {
			doc, markers := splitMarkers(f.Doc.Text())
			pkg.doc = doc
			for _, m := range markers {
				if g, ok := strings.CutPrefix(m, "+groupName="); ok {
					pkg.group = g
				}
			}
		}
		imports := map[string]string{}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			imports[local] = path
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					t, err := newGoType(s, declDoc(gd, s.Doc), imports, pkg)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", fset.Position(s.Pos()), err)
					}
					if t != nil {
						pkg.types[t.name] = t
						pkg.order = append(pkg.order, t.name)
					}
				case *ast.ValueSpec:
					if gd.Tok != token.CONST || s.Type == nil || len(s.Values) != len(s.Names) {
						continue
					}
					id, ok := s.Type.(*ast.Ident)
					if !ok {
						continue
					}
					for _, v := range s.Values {
						lit, ok := v.(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						val, _ := strconv.Unquote(lit.Value)
						doc := ""
						if s.Doc != nil {
							doc, _ = splitMarkers(s.Doc.Text())
						}
						doc = withoutName(doc, s.Names[0].Name)
						consts = append(consts, constSpec{typeName: id.Name, value: enumValue{value: val, doc: doc}})
					}
				}
			}
		}
	}
	if pkg.group == "" {
		return nil, fmt.Errorf("%s: no +groupName in the package comment", dir)
	}
	for _, c := range consts {
		if t := pkg.types[c.typeName]; t != nil && t.isEnum {
			t.values = append(t.values, c.value)
		}
	}
	return pkg, nil
}

// withoutName drops the Go identifier that starts a constant's comment
// ("ShutdownPolicyDelete deletes ..." becomes "Deletes ..."): readers of
// the reference write the value, never the Go name.
func withoutName(doc, name string) string {
	rest, ok := strings.CutPrefix(doc, name+" ")
	if !ok || rest == "" {
		return doc
	}
	return strings.ToUpper(rest[:1]) + rest[1:]
}

// declDoc is a type's comment: its own, or the declaration's when the
// declaration holds only this type (the usual `// T is ...\ntype T ...`).
func declDoc(gd *ast.GenDecl, own *ast.CommentGroup) *ast.CommentGroup {
	if own != nil {
		return own
	}
	if len(gd.Specs) == 1 {
		return gd.Doc
	}
	return nil
}

// newGoType records a struct or named string type; other declarations
// (none in API packages today) are not part of the wire format.
func newGoType(s *ast.TypeSpec, doc *ast.CommentGroup, imports map[string]string, pkg *goPackage) (*goType, error) {
	t := &goType{name: s.Name.Name, pkg: pkg, imports: imports}
	if doc != nil {
		t.doc, t.markers = splitMarkers(doc.Text())
	}
	switch u := s.Type.(type) {
	case *ast.Ident:
		if u.Name != "string" {
			return nil, nil
		}
		t.isEnum = true
	case *ast.StructType:
		t.fields = []goField{}
		for _, f := range u.Fields.List {
			field, err := newGoField(f)
			if err != nil {
				return nil, fmt.Errorf("type %s: %w", t.name, err)
			}
			if field != nil {
				t.fields = append(t.fields, *field)
			}
		}
	default:
		return nil, nil
	}
	return t, nil
}

func newGoField(f *ast.Field) (*goField, error) {
	field := &goField{typ: f.Type}
	if len(f.Names) > 1 {
		return nil, fmt.Errorf("one field per line, please: %v", f.Names)
	}
	if len(f.Names) == 1 {
		field.name = f.Names[0].Name
		if !ast.IsExported(field.name) {
			return nil, nil
		}
	} else {
		field.embedded = true
		field.name = typeName(f.Type)
	}
	if f.Tag == nil {
		return nil, fmt.Errorf("field %s has no json tag", field.name)
	}
	tag, _ := strconv.Unquote(f.Tag.Value)
	jsonTag, ok := reflect.StructTag(tag).Lookup("json")
	if !ok {
		return nil, fmt.Errorf("field %s has no json tag", field.name)
	}
	name, opts, _ := strings.Cut(jsonTag, ",")
	if name == "-" {
		return nil, nil
	}
	field.jsonName = name
	field.inline = name == "" && slices.Contains(strings.Split(opts, ","), "inline")
	if name == "" && !field.inline {
		return nil, fmt.Errorf("field %s: json tag without a name must be inline", field.name)
	}
	if f.Doc != nil {
		field.doc, _ = splitMarkers(f.Doc.Text())
	}
	return field, nil
}

// typeName is the name of an embedded field's type.
func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	}
	return ""
}

// splitMarkers separates the prose of a comment from its +markers, which
// are for the generators (controller-gen, code-generator), not the reader.
func splitMarkers(text string) (doc string, markers []string) {
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if m := strings.TrimSpace(line); strings.HasPrefix(m, "+") {
			markers = append(markers, m)
			continue
		}
		lines = append(lines, line)
	}
	return strings.TrimSpace(strings.Join(lines, "\n")), markers
}
