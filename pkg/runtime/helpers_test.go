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
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

// fixture is a Server on a fresh base dir, served over a real loopback
// listener (httptest), next to an "outside" dir holding a secret that no
// request may ever read or overwrite.
type fixture struct {
	srv     *Server
	http    *httptest.Server
	base    string // physical base dir
	outside string // physical dir next to base
	secret  string // outside/secret.txt
}

const secretContent = "top secret\n"

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{base: filepath.Join(tmp, "base"), outside: filepath.Join(tmp, "outside")}
	if err := os.MkdirAll(f.outside, 0o755); err != nil {
		t.Fatal(err)
	}
	f.secret = filepath.Join(f.outside, "secret.txt")
	if err := os.WriteFile(f.secret, []byte(secretContent), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.BaseDir = f.base
	if opts.Logger == nil {
		logger := ktesting.NewLogger(t, ktesting.NewConfig())
		opts.Logger = &logger
	}
	f.srv, err = NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.http = httptest.NewServer(f.srv)
	t.Cleanup(func() {
		f.http.CloseClientConnections()
		f.http.Close()
		f.srv.Close()
	})
	return f
}

// write creates a file below base (rel) with its parents.
func (f *fixture) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(f.base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// symlink creates base/rel -> target.
func (f *fixture) symlink(t *testing.T, target, rel string) {
	t.Helper()
	p := filepath.Join(f.base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request with a raw (already escaped) path, so tests control
// exactly the bytes on the wire.
func (f *fixture) do(t *testing.T, method, rawPath, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath // sent verbatim: no client-side cleaning or re-escaping
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (f *fixture) get(t *testing.T, rawPath string) response {
	t.Helper()
	return f.do(t, http.MethodGet, rawPath, "", nil)
}

func (f *fixture) execute(t *testing.T, body string) response {
	t.Helper()
	return f.do(t, http.MethodPost, "/execute", "application/json", strings.NewReader(body))
}

// upload posts content as the multipart field "file" with the filename
// given verbatim (no escaping of quotes or slashes).
func (f *fixture) upload(t *testing.T, filename, content string) response {
	t.Helper()
	body, contentType := multipartBody(t, "file", filename, content)
	return f.do(t, http.MethodPost, "/upload", contentType, body)
}

func multipartBody(t *testing.T, field, filename, content string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+field+`"; filename="`+escapeQuotedString(filename)+`"`)
	h.Set("Content-Type", "application/octet-stream")
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pw, content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func escapeQuotedString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// enc percent-encodes like the SDKs' enc(): every byte outside
// A-Z a-z 0-9 - _ . ~, and "." and ".." as a whole.
func enc(p string) string {
	switch p {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)>>4, 16)+strconv.FormatUint(uint64(c)&15, 16)))
	}
	return b.String()
}

// processAlive reports whether pid names a live (not zombie) process.
// Zombies count as dead: a killed grandchild reparented to an init that
// does not reap stays a zombie but runs nothing.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// waitDead polls until pid is gone, failing the test after timeout.
func waitDead(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // never leave it behind
			t.Fatalf("process %d still alive after %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPIDFile waits, up to 5 s, for a command to write its pid to path.
func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file %s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file %s not written within 5s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killAndWait SIGKILLs a process a test deliberately left running.
func killAndWait(t *testing.T, pid int) {
	t.Helper()
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitDead(t, pid, 5*time.Second)
}
