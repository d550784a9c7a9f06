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

package helm

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A documented flag value of values.yaml: "key: null  # --flag, default X".
type documentedFlag struct {
	path, flag, def string
}

var (
	valuesKeyLine = regexp.MustCompile(`^( *)([A-Za-z0-9]+):(.*)$`)
	documentedRE  = regexp.MustCompile(`^\s*null\s+#\s*--([a-z0-9-]+), default (\S+)`)
)

// documentedFlags reads values.yaml's documented flags with their dotted
// value paths, from the keys' indentation.
func documentedFlags(t *testing.T) []documentedFlag {
	t.Helper()
	f, err := os.Open(filepath.Join(ChartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type key struct {
		indent int
		name   string
	}
	var stack []key
	var out []documentedFlag
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := valuesKeyLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		indent := len(m[1])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, key{indent, m[2]})
		if d := documentedRE.FindStringSubmatch(m[3]); d != nil {
			var path []string
			for _, k := range stack {
				path = append(path, k.name)
			}
			out = append(out, documentedFlag{path: strings.Join(path, "."), flag: d[1], def: d[2]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	helpFlagLine = regexp.MustCompile(`^ {2}-([a-z0-9-]+)(?: (\w+))?$`)
	helpDefault  = regexp.MustCompile(`\(default (.*)\)$`)
)

// A flag of the binary: its type as --help names it ("" for a bool) and
// its default.
type binaryFlag struct {
	typ, def string
}

// binaryFlags builds the controller and reads each flag's type and
// default from its --help, which prints no default for a zero value.
func binaryFlags(t *testing.T) map[string]binaryFlag {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent-sandbox-controller")
	build := exec.Command("go", "build", "-o", bin, "./cmd/agent-sandbox-controller")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the controller: %v\n%s", err, out)
	}
	// --help exits 0 after printing to stderr.
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, help)
	}
	zero := map[string]string{"": "false", "int": "0", "float": "0", "duration": "0s", "string": "", "value": "0"}
	flags := map[string]binaryFlag{}
	name := ""
	for _, line := range strings.Split(string(help), "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = binaryFlag{typ: m[2], def: zero[m[2]]}
			continue
		}
		if d := helpDefault.FindStringSubmatch(strings.TrimSpace(line)); d != nil && name != "" {
			f := flags[name]
			f.def = strings.Trim(d[1], `"`)
			flags[name] = f
		}
	}
	return flags
}

// otherValue is a value of the flag's type that is not its default and,
// but for booleans, differs for each i, so a key passed as another flag
// cannot go unnoticed.
func otherValue(f binaryFlag, i int) string {
	switch f.typ {
	case "":
		return strconv.FormatBool(f.def != "true")
	case "int", "value":
		return strconv.Itoa(7919 + i)
	case "float":
		return strconv.Itoa(i) + ".5"
	case "duration":
		return strconv.Itoa(1001+i) + "ms"
	default:
		return "chart-test-" + strconv.Itoa(i) + ".example"
	}
}

// sameValue compares flag values as the flag package would parse them:
// 5m is 5m0s, 1 is 1.0.
func sameValue(a, b string) bool {
	if da, err := time.ParseDuration(a); err == nil {
		db, err := time.ParseDuration(b)
		return err == nil && da == db
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		fb, err := strconv.ParseFloat(b, 64)
		return err == nil && fa == fb
	}
	return a == b
}

// TestValuesDocumentTheBinarysDefaults: every "key: null  # --flag,
// default X" of values.yaml names a flag the controller has, X is that
// flag's default in the binary (so a changed default cannot leave the
// chart's documentation behind), and the chart passes the key's value as
// that flag.
func TestValuesDocumentTheBinarysDefaults(t *testing.T) {
	h := New(t)
	documented := documentedFlags(t)
	// Every tuning value of values.yaml is documented so; fewer means the
	// parser lost them.
	if len(documented) < 25 {
		t.Fatalf("only %d documented flags found in values.yaml: %v", len(documented), documented)
	}
	flags := binaryFlags(t)
	// One render with every key set to a value of its own (booleans, which
	// have only one other value, one render each): each key must add
	// exactly its flag with that value to the release's arguments.
	var set, want []string
	for i, d := range documented {
		f, ok := flags[d.flag]
		if !ok {
			t.Errorf("%s documents --%s, which the controller does not have", d.path, d.flag)
			continue
		}
		if !sameValue(f.def, d.def) {
			t.Errorf("%s documents --%s's default as %s; the binary's is %q", d.path, d.flag, d.def, f.def)
		}
		v := otherValue(f, i)
		if f.typ == "" {
			args := ContainerArgs(template(t, h, d.path+"="+v), "agent-sandbox-controller")
			if w := []string{"--leader-elect=true", "--extensions", "--" + d.flag + "=" + v}; !slices.Equal(args, w) {
				t.Errorf("%s=%s: args %v, want %v", d.path, v, args, w)
			}
			continue
		}
		set = append(set, d.path+"="+v)
		want = append(want, "--"+d.flag+"="+v)
	}
	args := ContainerArgs(template(t, h, set...), "agent-sandbox-controller")
	want = append([]string{"--leader-elect=true", "--extensions"}, want...)
	slices.Sort(args)
	slices.Sort(want)
	if d := cmp.Diff(want, args); d != "" {
		t.Errorf("each documented key set to a value of its own (-want +got):\n%s", d)
	}
}
