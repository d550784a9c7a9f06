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

package controllertest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// CheckDocPage holds a controller's page in docs/controllers to the
// package the test runs in. Operators read the page to learn why a
// controller waited and what its Events mean, and it went stale before
// (a wrong requeue interval, a missing pacer), so:
//
//   - reasons and durations must name exactly the package's Event reasons
//     (constants named Reason*) and time constants (those whose value uses
//     time.Second and the like), as found in its source: a constant added
//     without a word in the page fails here;
//   - the page must show each reason's value in backquotes, and each time
//     constant's name in backquotes with its value in the same table row
//     or paragraph ("1 min", "500 ms", "30 s"): a value changed in the
//     code and not in the page fails here.
func CheckDocPage(t *testing.T, page string, reasons map[string]string, durations map[string]time.Duration) {
	t.Helper()
	declared, err := declaredConsts(".")
	if err != nil {
		t.Fatal(err)
	}
	checkNames(t, "Event reason", declared.reasons, keys(reasons))
	checkNames(t, "time constant", declared.durations, keys(durations))

	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for name, value := range reasons {
		if !strings.Contains(text, "`"+value+"`") {
			t.Errorf("%s does not name the Event reason %#q (%s)", page, value, name)
		}
	}
	lines := strings.Split(text, "\n")
	for name, d := range durations {
		if msg := durationInPage(lines, name, d); msg != "" {
			t.Errorf("%s %s", page, msg)
		}
	}
}

type consts struct{ reasons, durations []string }

// declaredConsts finds the Event reason and time constants declared in
// the non-test Go files of dir.
func declaredConsts(dir string) (consts, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return consts{}, err
	}
	var out consts
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return consts{}, err
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					switch {
					case strings.HasPrefix(name.Name, "Reason"):
						out.reasons = append(out.reasons, name.Name)
					case i < len(vs.Values) && usesTimeUnit(vs.Values[i]):
						out.durations = append(out.durations, name.Name)
					}
				}
			}
		}
	}
	return out, nil
}

func usesTimeUnit(expr ast.Expr) bool {
	found := false
	ast.Inspect(expr, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "time" &&
				slices.Contains([]string{"Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour"}, sel.Sel.Name) {
				found = true
			}
		}
		return !found
	})
	return found
}

func checkNames(t *testing.T, what string, declared, listed []string) {
	t.Helper()
	for _, name := range declared {
		if !slices.Contains(listed, name) {
			t.Errorf("%s %s is declared but not checked against the page: add it to the test (and to the page)", what, name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(declared, name) {
			t.Errorf("%s %s is checked but no longer declared: remove it from the test (and from the page)", what, name)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// durationInPage returns what is wrong with how the page gives the time
// constant name of value d, or "".
func durationInPage(lines []string, name string, d time.Duration) string {
	value := durationPattern(d)
	seen := false
	for i, line := range lines {
		if !strings.Contains(line, "`"+name+"`") {
			continue
		}
		seen = true
		if value.MatchString(scope(lines, i)) {
			return ""
		}
	}
	if !seen {
		return fmt.Sprintf("does not name the time constant %#q (%s)", name, d)
	}
	return fmt.Sprintf("names %#q but not its value %s next to it (the same table row or paragraph)", name, d)
}

// scope is the table row of line i, or its paragraph.
func scope(lines []string, i int) string {
	if strings.HasPrefix(strings.TrimSpace(lines[i]), "|") {
		return lines[i]
	}
	from, to := i, i
	for from > 0 && strings.TrimSpace(lines[from-1]) != "" {
		from--
	}
	for to < len(lines)-1 && strings.TrimSpace(lines[to+1]) != "" {
		to++
	}
	return strings.Join(lines[from:to+1], " ")
}

// durationPattern matches d as the pages write it, in its largest whole
// unit: "1 h", "10 min", "30 s", "500 ms".
func durationPattern(d time.Duration) *regexp.Regexp {
	for _, u := range []struct {
		unit  time.Duration
		names string
	}{
		{time.Hour, `h|hours?`},
		{time.Minute, `min|minutes?|m`},
		{time.Second, `s|seconds?`},
		{time.Millisecond, `ms|milliseconds?`},
	} {
		if d >= u.unit && d%u.unit == 0 {
			return regexp.MustCompile(fmt.Sprintf(`\b%d\s*(%s)\b`, d/u.unit, u.names))
		}
	}
	return regexp.MustCompile(regexp.QuoteMeta(d.String()))
}
