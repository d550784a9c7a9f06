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
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRoutes(t *testing.T) {
	f := newFixture(t, Options{})
	tests := map[string]struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		"health": {
			method: http.MethodGet, path: "/",
			wantStatus: http.StatusOK, wantBody: `{"status":"ok","message":"Sandbox Runtime is active."}`,
		},
		"unknown path": {
			method: http.MethodGet, path: "/nope",
			wantStatus: http.StatusNotFound, wantBody: `{"detail":"Not Found"}`,
		},
		"execute needs POST": {
			method: http.MethodGet, path: "/execute",
			wantStatus: http.StatusMethodNotAllowed, wantBody: `{"detail":"Method Not Allowed"}`,
		},
		"download needs GET": {
			method: http.MethodPost, path: "/download/x",
			wantStatus: http.StatusMethodNotAllowed, wantBody: `{"detail":"Method Not Allowed"}`,
		},
		"HEAD on a GET route": {
			method: http.MethodHead, path: "/",
			wantStatus: http.StatusOK, wantBody: "",
		},
		"upload needs POST": {
			method: http.MethodGet, path: "/upload",
			wantStatus: http.StatusMethodNotAllowed, wantBody: `{"detail":"Method Not Allowed"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := f.do(t, tc.method, tc.path, "", nil)
			if got.status != tc.wantStatus || got.body != tc.wantBody {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}
}

func TestExecute(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(t, "hello.txt", "hi\n")
	tests := map[string]struct {
		body       string
		wantStatus int
		wantBody   string
	}{
		"stdout and exit 0": {
			body:       `{"command":"echo hello world"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"hello world\n","stderr":"","exit_code":0}`,
		},
		"no shell: variables are literal": {
			body:       `{"command":"echo $HOME"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"$HOME\n","stderr":"","exit_code":0}`,
		},
		"no shell: pipes and redirects are arguments": {
			body:       `{"command":"echo a | wc > out"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"a | wc > out\n","stderr":"","exit_code":0}`,
		},
		"quoting": {
			body:       `{"command":"printf '%s|' 'a b' \"c\\\"d\" e\\ f"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"a b|c\"d|e f|","stderr":"","exit_code":0}`,
		},
		"runs in the base dir": {
			body:       `{"command":"cat hello.txt"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"hi\n","stderr":"","exit_code":0}`,
		},
		"stderr and exit code": {
			body:       `{"command":"sh -c 'echo oops >&2; exit 3'"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"oops\n","exit_code":3}`,
		},
		"killed by a signal reports minus the signal": {
			body:       `{"command":"sh -c 'kill -9 $$'"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"","exit_code":-9}`,
		},
		"HTML characters are not escaped": {
			body:       `{"command":"echo <a&b>"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"<a&b>\n","stderr":"","exit_code":0}`,
		},
		"unterminated quote": {
			body:       `{"command":"echo 'abc"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"Failed to execute command: no closing quotation","exit_code":1}`,
		},
		"empty command": {
			body:       `{"command":"  "}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"Failed to execute command: empty command","exit_code":1}`,
		},
		"command not found": {
			body:       `{"command":"no-such-command-xyz"}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"Failed to execute command: exec: \"no-such-command-xyz\": executable file not found in $PATH","exit_code":1}`,
		},
		"timeout": {
			body:       `{"command":"sleep 10","timeout_seconds":0.2}`,
			wantStatus: http.StatusOK, wantBody: `{"stdout":"","stderr":"Failed to execute command: command 'sleep 10' timed out after 0.2 seconds","exit_code":1}`,
		},
		"not JSON": {
			body:       `echo hi`,
			wantStatus: http.StatusUnprocessableEntity,
		},
		"missing command": {
			body:       `{"cmd":"echo hi"}`,
			wantStatus: http.StatusUnprocessableEntity, wantBody: `{"detail":"field \"command\" is required"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := f.execute(t, tc.body)
			if got.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", got.status, got.body, tc.wantStatus)
			}
			if tc.wantBody != "" {
				if diff := cmp.Diff(tc.wantBody, got.body); diff != "" {
					t.Errorf("body (-want,+got):\n%s", diff)
				}
			}
		})
	}
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	f := newFixture(t, Options{})
	tests := map[string]struct {
		filename    string
		requestPath string // raw download path
		wantDisp    string
	}{
		"plain name": {
			filename: "a.txt", requestPath: "/download/a.txt",
			wantDisp: `attachment; filename="a.txt"`,
		},
		"subdirectories are created; SDK-encoded slashes": {
			filename: "x/y/z.bin", requestPath: "/download/" + enc("x/y/z.bin"),
			wantDisp: `attachment; filename="x/y/z.bin"`,
		},
		"literal slashes work too": {
			filename: "lit/file", requestPath: "/download/lit/file",
			wantDisp: `attachment; filename="lit/file"`,
		},
		"double-encoded slashes (decoded once more)": {
			filename: "dd/file", requestPath: "/download/dd%252Ffile",
			wantDisp: `attachment; filename="dd/file"`,
		},
		"leading slash is relative to the base dir": {
			filename: "/abs/file", requestPath: "/download/" + enc("/abs/file"),
			wantDisp: `attachment; filename="/abs/file"`,
		},
		"spaces and unicode use the RFC 5987 form": {
			filename: "my file é.txt", requestPath: "/download/" + enc("my file é.txt"),
			wantDisp: `attachment; filename*=utf-8''my%20file%20%C3%A9.txt`,
		},
		"quotes cannot break the header": {
			filename: `q"; x=".txt`, requestPath: "/download/" + enc(`q"; x=".txt`),
			wantDisp: `attachment; filename*=utf-8''q%22%3B%20x%3D%22.txt`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			content := "content of " + name
			up := f.upload(t, tc.filename, content)
			wantUp := `{"message":"File '` + strings.ReplaceAll(tc.filename, `"`, `\"`) + `' uploaded successfully."}`
			if up.status != http.StatusOK || up.body != wantUp {
				t.Fatalf("upload = %d %s, want 200 %s", up.status, up.body, wantUp)
			}
			onDisk, err := os.ReadFile(filepath.Join(f.base, strings.TrimLeft(tc.filename, "/")))
			if err != nil || string(onDisk) != content {
				t.Fatalf("file on disk = %q, %v; want %q", onDisk, err, content)
			}
			down := f.get(t, tc.requestPath)
			if down.status != http.StatusOK || down.body != content {
				t.Fatalf("download = %d %q, want 200 %q", down.status, down.body, content)
			}
			if ct := down.header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("Content-Type = %q", ct)
			}
			if d := down.header.Get("Content-Disposition"); d != tc.wantDisp {
				t.Errorf("Content-Disposition = %q, want %q", d, tc.wantDisp)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	f := newFixture(t, Options{MaxUploadBytes: 1000})
	f.write(t, "dir/keep", "x")
	if err := os.WriteFile(filepath.Join(f.base, "exec.sh"), []byte("old"), 0o750); err != nil {
		t.Fatal(err)
	}

	t.Run("overwrite keeps the permission bits", func(t *testing.T) {
		if got := f.upload(t, "exec.sh", "new"); got.status != http.StatusOK {
			t.Fatalf("upload = %d %s", got.status, got.body)
		}
		info, err := os.Stat(filepath.Join(f.base, "exec.sh"))
		if err != nil || info.Mode().Perm() != 0o750 {
			t.Errorf("mode = %v, %v; want 0750", info.Mode(), err)
		}
	})
	t.Run("new files and dirs are 0644 and 0755 less the umask", func(t *testing.T) {
		if got := f.upload(t, "newdir/new.txt", "n"); got.status != http.StatusOK {
			t.Fatalf("upload = %d %s", got.status, got.body)
		}
		fi, _ := os.Stat(filepath.Join(f.base, "newdir", "new.txt"))
		di, _ := os.Stat(filepath.Join(f.base, "newdir"))
		if fi.Mode().Perm()&^0o644 != 0 || di.Mode().Perm()&^0o755 != 0 {
			t.Errorf("modes = %v, %v", fi.Mode(), di.Mode())
		}
	})

	tests := map[string]struct {
		field, filename, content string
		wantStatus               int
		wantBody                 string
	}{
		"too large": {
			field: "file", filename: "big", content: strings.Repeat("x", 1001),
			wantStatus: http.StatusRequestEntityTooLarge, wantBody: `{"message":"File upload failed: file larger than 1000 bytes"}`,
		},
		"exactly the limit": {
			field: "file", filename: "fits", content: strings.Repeat("x", 1000),
			wantStatus: http.StatusOK, wantBody: `{"message":"File 'fits' uploaded successfully."}`,
		},
		"onto a directory": {
			field: "file", filename: "dir", content: "x",
			wantStatus: http.StatusInternalServerError, wantBody: `{"message":"File upload failed: is a directory"}`,
		},
		"onto the base dir": {
			field: "file", filename: "/", content: "x",
			wantStatus: http.StatusInternalServerError, wantBody: `{"message":"File upload failed: is a directory"}`,
		},
		"below a file": {
			field: "file", filename: "dir/keep/sub", content: "x",
			wantStatus: http.StatusInternalServerError,
		},
		"wrong field": {
			field: "other", filename: "x", content: "x",
			wantStatus: http.StatusBadRequest, wantBody: `{"message":"File upload failed: no multipart field \"file\""}`,
		},
		"escaping filename": {
			field: "file", filename: "../escape.txt", content: "x",
			wantStatus: http.StatusForbidden, wantBody: `{"message":"Access denied"}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body, ct := multipartBody(t, tc.field, tc.filename, tc.content)
			got := f.do(t, http.MethodPost, "/upload", ct, body)
			if got.status != tc.wantStatus || (tc.wantBody != "" && got.body != tc.wantBody) {
				t.Errorf("upload = %d %s, want %d %s", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
		})
	}

	t.Run("not multipart", func(t *testing.T) {
		got := f.do(t, http.MethodPost, "/upload", "application/json", strings.NewReader("{}"))
		if got.status != http.StatusBadRequest {
			t.Errorf("upload = %d %s, want 400", got.status, got.body)
		}
	})
	t.Run("failed uploads leave no temporary files", func(t *testing.T) {
		var leftovers []string
		_ = filepath.WalkDir(f.base, func(p string, d os.DirEntry, err error) error {
			if strings.HasPrefix(d.Name(), uploadTempPrefix) || d.Name() == "big" {
				leftovers = append(leftovers, p)
			}
			return nil
		})
		if len(leftovers) > 0 {
			t.Errorf("left behind: %v", leftovers)
		}
	})
}

func TestDownloadErrors(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(t, "dir/file", "x")
	notFound := `{"message":"File not found"}`
	for name, path := range map[string]string{
		"missing":   "/download/nope",
		"directory": "/download/dir",
		"base dir":  "/download/",
		"fifo":      "/download/fifo",
	} {
		if name == "fifo" {
			if err := syscall.Mkfifo(filepath.Join(f.base, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(name, func(t *testing.T) {
			got := f.get(t, path)
			if got.status != http.StatusNotFound || got.body != notFound {
				t.Errorf("GET %s = %d %s, want 404 %s", path, got.status, got.body, notFound)
			}
		})
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(t, "b.txt", "12345")
	f.write(t, "sub/inner", "")
	f.symlink(t, "b.txt", "link-to-file")
	f.symlink(t, "sub", "link-to-dir")
	f.symlink(t, f.outside, "link-outside")
	f.symlink(t, "missing", "dangling")
	mtime := time.Unix(1700000000, 500000000)
	if err := os.Chtimes(filepath.Join(f.base, "b.txt"), mtime, mtime); err != nil {
		t.Fatal(err)
	}

	got := f.get(t, "/list/")
	if got.status != http.StatusOK {
		t.Fatalf("list = %d %s", got.status, got.body)
	}
	var entries []fileEntry
	if err := json.Unmarshal([]byte(got.body), &entries); err != nil {
		t.Fatal(err)
	}
	want := []fileEntry{
		{Name: "b.txt", Size: 5, Type: "file", ModTime: 1700000000.5},
		{Name: "link-to-dir", Type: "directory"},
		{Name: "link-to-file", Size: 5, Type: "file"},
		{Name: "sub", Type: "directory"},
	}
	if diff := cmp.Diff(want, entries, cmp.Comparer(func(a, b fileEntry) bool {
		if a.Name != b.Name || a.Type != b.Type {
			return false
		}
		if a.Type == "directory" { // size and mtime are the filesystem's
			return true
		}
		return a.Size == b.Size && (a.ModTime == 0 || b.ModTime == 0 || a.ModTime == b.ModTime)
	})); diff != "" {
		t.Errorf("entries (-want,+got):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		"empty dir is an empty array": {"/list/sub%2Fempty", http.StatusOK, `[]`},
		"subdir, encoded":             {"/list/" + enc("sub"), http.StatusOK, ""},
		"base dir without slash":      {"/list", http.StatusOK, ""},
		"a file":                      {"/list/b.txt", http.StatusNotFound, `{"message":"Path is not a directory"}`},
		"missing":                     {"/list/none", http.StatusNotFound, `{"message":"Path is not a directory"}`},
	} {
		if name == "empty dir is an empty array" {
			_ = os.Mkdir(filepath.Join(f.base, "sub", "empty"), 0o755)
		}
		t.Run(name, func(t *testing.T) {
			got := f.get(t, tc.path)
			if got.status != tc.wantStatus || (tc.wantBody != "" && got.body != tc.wantBody) {
				t.Errorf("GET %s = %d %s, want %d %s", tc.path, got.status, got.body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestExists(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(t, "d/f.txt", "x")
	f.symlink(t, "f.txt", "d/good-link")
	f.symlink(t, "nowhere", "d/dangling")
	for name, tc := range map[string]struct {
		path     string
		wantBody string
	}{
		"file, SDK-encoded":  {"/exists/" + enc("d/f.txt"), `{"path":"d/f.txt","exists":true}`},
		"dir":                {"/exists/d", `{"path":"d","exists":true}`},
		"base dir":           {"/exists/" + enc("."), `{"path":".","exists":true}`},
		"missing":            {"/exists/d%2Fnope", `{"path":"d/nope","exists":false}`},
		"symlink inside":     {"/exists/d/good-link", `{"path":"d/good-link","exists":true}`},
		"dangling symlink":   {"/exists/d/dangling", `{"path":"d/dangling","exists":false}`},
		"absolute re-rooted": {"/exists/" + enc("/d/f.txt"), `{"path":"/d/f.txt","exists":true}`},
		"escape":             {"/exists/" + enc("../outside"), `{"message":"Access denied"}`},
	} {
		t.Run(name, func(t *testing.T) {
			got := f.get(t, tc.path)
			wantStatus := http.StatusOK
			if strings.Contains(tc.wantBody, "Access denied") {
				wantStatus = http.StatusForbidden
			}
			if got.status != wantStatus || got.body != tc.wantBody {
				t.Errorf("GET %s = %d %s, want %d %s", tc.path, got.status, got.body, wantStatus, tc.wantBody)
			}
		})
	}
}

func TestOptionsFromEnv(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want Options
	}{
		"defaults": {
			env:  map[string]string{},
			want: Options{DefaultTimeout: DefaultExecTimeout, MaxTimeout: DefaultMaxExecTimeout, MaxUploadBytes: DefaultMaxUploadBytes, MaxOutputBytes: DefaultMaxOutputBytes},
		},
		"values": {
			env: map[string]string{EnvBaseDir: " /work ", EnvExecTimeout: "1.5", EnvMaxExecTimeout: "60", EnvMaxUploadBytes: "10", EnvMaxOutputBytes: "20"},
			want: Options{BaseDir: "/work", DefaultTimeout: 1500 * time.Millisecond, MaxTimeout: time.Minute,
				MaxUploadBytes: 10, MaxOutputBytes: 20},
		},
		"non-finite, non-positive and garbage fall back": {
			env:  map[string]string{EnvExecTimeout: "inf", EnvMaxExecTimeout: "-3", EnvMaxUploadBytes: "lots", EnvMaxOutputBytes: "0"},
			want: Options{DefaultTimeout: DefaultExecTimeout, MaxTimeout: DefaultMaxExecTimeout, MaxUploadBytes: DefaultMaxUploadBytes, MaxOutputBytes: DefaultMaxOutputBytes},
		},
		"NaN": {
			env:  map[string]string{EnvExecTimeout: "NaN"},
			want: Options{DefaultTimeout: DefaultExecTimeout, MaxTimeout: DefaultMaxExecTimeout, MaxUploadBytes: DefaultMaxUploadBytes, MaxOutputBytes: DefaultMaxOutputBytes},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := OptionsFromEnv(func(k string) string { return tc.env[k] })
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Options{}, "Logger")); diff != "" {
				t.Errorf("(-want,+got):\n%s", diff)
			}
		})
	}
}

func TestExecTimeout(t *testing.T) {
	s := &Server{defaultTimeout: 300 * time.Second, maxTimeout: time.Hour}
	f := func(v float64) *float64 { return &v }
	for name, tc := range map[string]struct {
		requested *float64
		want      time.Duration
	}{
		"absent":          {nil, 300 * time.Second},
		"given":           {f(2.5), 2500 * time.Millisecond},
		"capped":          {f(1e9), time.Hour},
		"zero is default": {f(0), 300 * time.Second},
		"negative":        {f(-1), 300 * time.Second},
		"huge saturates":  {f(1e300), time.Hour},
	} {
		if got := s.execTimeout(tc.requested); got != tc.want {
			t.Errorf("%s: execTimeout = %v, want %v", name, got, tc.want)
		}
	}
}
