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

package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/runtime"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// fakeRouter is a router for one sandbox in front of a real runtime
// server: it checks the routing headers and the bearer token as the router
// does and hands the request on without them.
type fakeRouter struct {
	t       *testing.T
	base    string // the runtime's base directory
	token   string
	sandbox string
}

func startFakeRouter(t *testing.T, f *fixture, sandbox, token string) *fakeRouter {
	t.Helper()
	logger := ktesting.NewLogger(t, ktesting.NewConfig())
	rt, err := runtime.NewServer(runtime.Options{BaseDir: t.TempDir(), Logger: &logger})
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRouter{t: t, base: rt.BaseDir(), token: token, sandbox: sandbox}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer "+fr.token:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"unauthenticated: no bearer token"}`))
			return
		case r.Header.Get("X-Sandbox-Id") != fr.sandbox || r.Header.Get("X-Sandbox-Namespace") != "ns" || r.Header.Get("X-Sandbox-Port") != "8888":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"detail":"Sandbox not found: ` + r.Header.Get("X-Sandbox-Id") + `"}`))
			return
		}
		r.Header.Del("Authorization")
		rt.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		rt.Close()
	})
	f.routerURL = srv.URL
	return fr
}

func TestExecExitCodesAndOutput(t *testing.T) {
	for name, tc := range map[string]struct {
		args           []string
		stdin          string
		code           int
		stdout, stderr string
	}{
		"success":       {[]string{"--", "sh", "-c", "echo out; echo err >&2"}, "", ExitOK, "out\n", "err\n"},
		"exit code":     {[]string{"--", "sh", "-c", "exit 3"}, "", 3, "", ""},
		"exit 255":      {[]string{"--", "sh", "-c", "exit 255"}, "", 255, "", ""},
		"signal":        {[]string{"--", "sh", "-c", "kill -9 $$"}, "", 137, "", ""},
		"args verbatim": {[]string{"--", "printf", "[%s]", "a b", "it's", `"q"`, "$HOME", ""}, "", ExitOK, `[a b][it's]["q"][$HOME][]`, ""},
		"stdin":         {[]string{"-i", "--", "tr", "a-z", "A-Z"}, "hello\n", ExitOK, "HELLO\n", ""},
		"no stdin":      {[]string{"--", "cat"}, "ignored", ExitOK, "", ""},
		"not found":     {[]string{"--", "no-such-command-here"}, "", ExitCommandNotFound, "", "executable file not found"},
		"timeout":       {[]string{"--timeout", "1s", "--", "sleep", "30"}, "", ExitTimeout, "", "timed out after 1 seconds"},
		"missing claim": {[]string{"--", "true"}, "", ExitNotFound, "", `sandboxclaim "missing" not found`},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, claimObj("task", "python", "python-x7k2p", time.Minute, "127.0.0.11"),
				readySandbox("python-x7k2p"))
			startFakeRouter(t, f, "python-x7k2p", "kubeconfig-token")
			f.stdin = strings.NewReader(tc.stdin)
			claim := "task"
			if name == "missing claim" {
				claim = "missing"
			}
			code := f.run(append([]string{"exec", claim}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, f.errOut.String())
			}
			if got := f.out.String(); got != tc.stdout {
				t.Errorf("stdout %q, want %q", got, tc.stdout)
			}
			if got := f.errOut.String(); (tc.stderr == "") != (got == "") || !strings.Contains(got, tc.stderr) {
				t.Errorf("stderr %q, want %q", got, tc.stderr)
			}
		})
	}
}

func TestRouterTokenChoice(t *testing.T) {
	for name, tc := range map[string]struct {
		flags       []string
		env         string
		routerToken string
		code        int
	}{
		"kubeconfig token":       {nil, "", "kubeconfig-token", ExitOK},
		"--router-token wins":    {[]string{"--router-token", "flag-token"}, "env-token", "flag-token", ExitOK},
		"environment over kube":  {nil, "env-token", "env-token", ExitOK},
		"wrong token is refused": {[]string{"--router-token", "other"}, "", "kubeconfig-token", ExitFailure},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, claimObj("task", "python", "python-x7k2p", time.Minute), readySandbox("python-x7k2p"))
			startFakeRouter(t, f, "python-x7k2p", tc.routerToken)
			if tc.env != "" {
				f.env[EnvRouterToken] = tc.env
			}
			args := append([]string{"exec", "task"}, tc.flags...)
			if code := f.run(append(args, "--", "true")...); code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, f.errOut.String())
			}
			if tc.code != ExitOK && !strings.Contains(f.errOut.String(), "hint: the router needs a bearer token") {
				t.Errorf("stderr %q: want the token hint", f.errOut.String())
			}
		})
	}
}

func TestCopyAndFiles(t *testing.T) {
	f := newFixture(t, claimObj("task", "python", "python-x7k2p", time.Minute), readySandbox("python-x7k2p"))
	fr := startFakeRouter(t, f, "python-x7k2p", "kubeconfig-token")
	local := t.TempDir()
	src := filepath.Join(local, "data.csv")
	content := "a,b\n1,2\n\x00\xff"
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	// Upload to a path, and to a directory (the local name is kept).
	for _, dst := range []string{"task:in/copy.csv", "task:in/"} {
		if code := f.run("cp", src, dst); code != ExitOK {
			t.Fatalf("cp %s %s: exit code %d: %s", src, dst, code, f.errOut.String())
		}
	}
	for _, p := range []string{"in/copy.csv", "in/data.csv"} {
		if b, err := os.ReadFile(filepath.Join(fr.base, p)); err != nil || string(b) != content {
			t.Errorf("%s in the sandbox: %q, %v", p, b, err)
		}
	}
	// Standard input to a named file.
	f.stdin = strings.NewReader("from stdin")
	if code := f.run("cp", "-", "task:in/stdin.txt"); code != ExitOK {
		t.Fatalf("cp - : exit code %d: %s", code, f.errOut.String())
	}

	// Download to a file, into a directory, and to standard output.
	out := filepath.Join(local, "back.csv")
	if code := f.run("cp", "task:in/copy.csv", out); code != ExitOK {
		t.Fatalf("download: exit code %d: %s", code, f.errOut.String())
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != content {
		t.Errorf("downloaded %q, %v", b, err)
	}
	dir := t.TempDir()
	if code := f.run("cp", "task:in/stdin.txt", dir); code != ExitOK {
		t.Fatalf("download into a directory: exit code %d: %s", code, f.errOut.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "stdin.txt")); err != nil || string(b) != "from stdin" {
		t.Errorf("downloaded into a directory: %q, %v", b, err)
	}
	if code := f.run("cp", "task:in/stdin.txt", "-"); code != ExitOK || f.out.String() != "from stdin" {
		t.Errorf("download to stdout: exit code %d, stdout %q", code, f.out.String())
	}
	// A missing file is the runtime's 404: an error, not "not found"
	// (which means the claim).
	if code := f.run("cp", "task:in/none.txt", "-"); code != ExitFailure || !strings.Contains(f.errOut.String(), "404") {
		t.Errorf("missing file: exit code %d, stderr %q", code, f.errOut.String())
	}

	if code := f.run("files", "task", "in", "-o", "name"); code != ExitOK {
		t.Fatalf("files: exit code %d: %s", code, f.errOut.String())
	}
	names := strings.Fields(f.out.String())
	if d := cmp.Diff([]string{"copy.csv", "data.csv", "stdin.txt"}, names); d != "" {
		t.Errorf("files -o name (-want,+got):\n%s", d)
	}
	if code := f.run("files", "task", "in", "-o", "json"); code != ExitOK {
		t.Fatalf("files -o json: exit code %d: %s", code, f.errOut.String())
	}
	var listed struct {
		Items []fileEntry `json:"items"`
	}
	if err := json.Unmarshal(f.out.Bytes(), &listed); err != nil || len(listed.Items) != 3 ||
		listed.Items[0].Type != "file" || listed.Items[0].Size != int64(len(content)) {
		t.Errorf("files -o json: %+v, %v (%s)", listed, err, f.out.String())
	}
	if code := f.run("files", "task"); code != ExitOK || !strings.HasPrefix(f.out.String(), "NAME   TYPE        SIZE   MODIFIED\nin     directory") {
		t.Errorf("files table: exit code %d, stdout %q", code, f.out.String())
	}
}

func TestPrintFilesTable(t *testing.T) {
	var b strings.Builder
	err := printFiles(&b, outputDefault, []sdk.FileEntry{
		{Name: "main.py", Type: sdk.FileTypeFile, Size: 1234, ModTime: testNow},
		{Name: "out", Type: sdk.FileTypeDirectory, Size: 4096, ModTime: testNow.Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "files-table.golden", b.String())
}
