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

package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// resolverTree builds base and outside dirs (siblings) with symlinks of
// every kind and returns the physical base path.
func resolverTree(tb testing.TB) string {
	tb.Helper()
	tmp, err := filepath.EvalSymlinks(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	base, outside := filepath.Join(tmp, "base"), filepath.Join(tmp, "outside")
	for _, d := range []string{base + "/dir/sub", outside + "/odir", tmp + "/base-evil"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for name, content := range map[string]string{base + "/file": "f", base + "/dir/sub/deep": "d", outside + "/secret": "s"} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"in-rel":       "dir/sub",            // stays inside
		"in-abs":       base + "/dir",        // absolute, inside
		"dir/up":       "..",                 // back to base
		"dir/up2":      "../..",              // out
		"out-abs":      outside,              // out
		"out-rel":      "../outside/secret",  // out
		"evil":         "../base-evil",       // prefix confusion
		"round-trip":   "../outside/back-in", // out, then in again
		"dangling-in":  "dir/not-yet",        // missing, inside
		"dangling-out": outside + "/not-yet", // missing, outside
		"loop-a":       "loop-b",
		"loop-b":       "loop-a",
		"self":         "self/x",
		"file-as-dir":  "file/x",
		// Through a missing directory and back up: the kernel fails it;
		// lexical cleaning would land on out-abs, a link out of base.
		"via-missing": "missing/../out-abs",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Symlink(base+"/dir/sub", outside+"/back-in"); err != nil {
		tb.Fatal(err)
	}
	return base
}

func TestResolveInBase(t *testing.T) {
	base := resolverTree(t)
	tests := map[string]struct {
		in      string
		want    string
		wantErr error
	}{
		"empty is the base":           {in: "", want: "."},
		"slash is the base":           {in: "/", want: "."},
		"dot":                         {in: ".", want: "."},
		"file":                        {in: "file", want: "file"},
		"leading slashes stripped":    {in: "///dir//sub/./deep", want: "dir/sub/deep"},
		"lexical dotdot inside":       {in: "dir/../file", want: "file"},
		"missing tail kept":           {in: "dir/new/a/b", want: "dir/new/a/b"},
		"relative link inside":        {in: "in-rel/deep", want: "dir/sub/deep"},
		"absolute link inside":        {in: "in-abs/sub", want: "dir/sub"},
		"link to parent inside":       {in: "dir/up/file", want: "file"},
		"chain out and back in":       {in: "round-trip/deep", want: "dir/sub/deep"},
		"dangling link inside":        {in: "dangling-in", want: "dir/not-yet"},
		"below a file (kernel fails)": {in: "file/x", want: "file/x"},
		"dotdot":                      {in: "..", wantErr: errAccessDenied},
		"dotdot after slash":          {in: "/../x", wantErr: errAccessDenied},
		"escape by lexical dotdot":    {in: "a/../../x", wantErr: errAccessDenied},
		"link to grandparent":         {in: "dir/up2", wantErr: errAccessDenied},
		"absolute link out":           {in: "out-abs/secret", wantErr: errAccessDenied},
		"relative link out":           {in: "out-rel", wantErr: errAccessDenied},
		"prefix confusion":            {in: "evil", wantErr: errAccessDenied},
		"dangling link out":           {in: "dangling-out", wantErr: errAccessDenied},
		"below dangling link out":     {in: "dangling-out/a/b", wantErr: errAccessDenied},
		"NUL":                         {in: "file\x00.txt", wantErr: errAccessDenied},
		"missing dir then dotdot":     {in: "via-missing/secret", wantErr: fs.ErrNotExist},
		"loop":                        {in: "loop-a", wantErr: syscall.ELOOP},
		"self loop":                   {in: "self", wantErr: syscall.ELOOP},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := resolveInBase(base, tc.in)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("resolveInBase(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("resolveInBase(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRelativeToBaseRoot(t *testing.T) {
	if rel, ok := relativeToBase("/", "/etc/x"); !ok || rel != "etc/x" {
		t.Errorf(`relativeToBase("/", "/etc/x") = %q, %v`, rel, ok)
	}
	if _, ok := relativeToBase("/app", "/app-evil/x"); ok {
		t.Errorf("/app-evil/x counted as inside /app")
	}
}

func TestUnquotePath(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"a%2Fb":     "a/b",
		"%2E%2E":    "..",
		"%2e":       ".",
		"a%252Fb":   "a%2Fb", // one round only
		"100%":      "100%",
		"%zz%4":     "%zz%4",
		"a+b":       "a+b",
		"%00":       "\x00",
		"%C3%A9%FF": "é\xff",
	} {
		if got := unquotePath(in); got != want {
			t.Errorf("unquotePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzResolveInBase: for any client path the result is an error or a
// relative path whose physical location is inside base. Where the path
// exists, the kernel (filepath.EvalSymlinks) is the oracle: the resolver
// must agree with it exactly, refusing exactly what lands outside.
func FuzzResolveInBase(f *testing.F) {
	base := resolverTree(f)
	for _, seed := range []string{
		"", "/", "..", "../outside/secret", "a/../../x", "file", "dir/up/dir/up/file", "dir/up2/outside",
		"in-rel/deep", "out-abs/secret", "round-trip/deep", "evil", "dangling-out/x", "loop-a", "self",
		"file\x00", "//dir///sub/..//sub/deep", "dir/sub/../../..", strings.Repeat("dir/up/", 50) + "file",
		strings.Repeat("x", 300), "via-missing", "via-missing/secret",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, clientPath string) {
		rel, err := resolveInBase(base, clientPath)
		if err == nil {
			if rel == "" || filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") || filepath.Clean(rel) != rel {
				t.Fatalf("resolveInBase(%q) = %q: not a clean relative path below base", clientPath, rel)
			}
			// The longest existing prefix must really (per the kernel) be
			// inside base.
			p := filepath.Join(base, rel)
			for {
				if _, err := os.Lstat(p); err == nil {
					break
				}
				p = filepath.Dir(p)
			}
			if target, err := filepath.EvalSymlinks(p); err == nil {
				if _, ok := relativeToBase(base, target); !ok {
					t.Fatalf("resolveInBase(%q) = %q, but %s is really %s", clientPath, rel, p, target)
				}
			}
		}
		if strings.IndexByte(clientPath, 0) >= 0 {
			if !errors.Is(err, errAccessDenied) {
				t.Fatalf("NUL in %q not refused: %q, %v", clientPath, rel, err)
			}
			return
		}
		cleaned := filepath.Clean(strings.TrimLeft(clientPath, "/"))
		if cleaned == ".." || strings.HasPrefix(cleaned, "../") {
			if !errors.Is(err, errAccessDenied) {
				t.Fatalf("lexical escape %q not refused: %q, %v", clientPath, rel, err)
			}
			return
		}
		target, evalErr := filepath.EvalSymlinks(filepath.Join(base, cleaned))
		if evalErr != nil {
			return // missing or looping: no oracle
		}
		if wantRel, inside := relativeToBase(base, target); inside {
			if err != nil || rel != wantRel {
				t.Fatalf("resolveInBase(%q) = %q, %v; the kernel resolves it to %q inside base", clientPath, rel, err, wantRel)
			}
		} else if !errors.Is(err, errAccessDenied) {
			t.Fatalf("resolveInBase(%q) = %q, %v; the kernel resolves it outside, to %s", clientPath, rel, err, target)
		}
	})
}
