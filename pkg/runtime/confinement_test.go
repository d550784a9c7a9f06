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
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// snapshot records every name and file content below dir, to prove a
// request wrote nothing there.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		content := "<dir>"
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = string(b)
		}
		got[p] = content
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// hostileFixture is a base dir planted with every kind of symlink that
// could lead out of it.
func hostileFixture(t *testing.T) *fixture {
	f := newFixture(t, Options{})
	f.write(t, "inside.txt", "fine")
	f.symlink(t, f.outside, "escape-link")                             // absolute, to a dir outside
	f.symlink(t, f.secret, "secret-link")                              // absolute, to a file outside
	f.symlink(t, "../outside", "rel-escape")                           // relative, climbing out
	f.symlink(t, "sub/../../outside/secret.txt", "rel-file-escape")    // relative with .. inside the target
	f.symlink(t, "c2", "c1")                                           // chain c1 -> c2 -> c3 -> outside
	f.symlink(t, "c3", "c2")                                           //
	f.symlink(t, f.outside, "c3")                                      //
	f.symlink(t, filepath.Join(f.outside, "created-by-attack"), "dng") // dangling, pointing outside
	f.symlink(t, "loop2", "loop1")                                     // cycle
	f.symlink(t, "loop1", "loop2")                                     //
	f.symlink(t, "/", "rootfs")                                        // the whole filesystem
	f.symlink(t, "/etc", "etc-link")                                   //
	f.symlink(t, "../escape-link", "nested/deeper-link")               // a link to a link out
	return f
}

func TestConfinementHostilePaths(t *testing.T) {
	f := hostileFixture(t)
	outsideBefore := snapshot(t, f.outside)
	passwd, _ := os.ReadFile("/etc/passwd")

	denied := []string{
		"..", "../..", "../../..", "../outside/secret.txt", "a/../../x", "./..", "x/../../outside",
		"escape-link", "escape-link/secret.txt", "escape-link/new.txt",
		"secret-link", "rel-escape/secret.txt", "rel-file-escape",
		"c1", "c1/secret.txt", "c2/secret.txt", "dng", "dng/x",
		"rootfs/etc/passwd", "/rootfs/etc/passwd", "etc-link/passwd", "etc-link/hostname",
		"nested/deeper-link/secret.txt", "nested/deeper-link",
		"nul\x00byte", "inside.txt\x00", "a/\x00/../..",
	}
	endpoints := []string{"download", "list", "exists"}
	for _, p := range denied {
		forms := map[string]string{"sdk": enc(p), "double-encoded": strings.ReplaceAll(enc(p), "%", "%25")}
		if !strings.ContainsAny(p, "\x00%?#") && !strings.HasPrefix(p, "/") {
			forms["literal"] = p
		}
		for form, raw := range forms {
			for _, ep := range endpoints {
				got := f.get(t, "/"+ep+"/"+raw)
				if got.status != http.StatusForbidden || got.body != `{"message":"Access denied"}` {
					t.Errorf("GET /%s/%s (%s of %q) = %d %s, want 403 Access denied", ep, raw, form, p, got.status, got.body)
				}
				if strings.Contains(got.body, strings.TrimSpace(secretContent)) || (len(passwd) > 0 && strings.Contains(got.body, "root:")) {
					t.Errorf("GET /%s/%s leaked outside content: %s", ep, raw, got.body)
				}
			}
		}
		if strings.IndexByte(p, 0) < 0 { // a NUL cannot even be sent in a header
			if got := f.upload(t, p, "pwned"); got.status != http.StatusForbidden || got.body != `{"message":"Access denied"}` {
				t.Errorf("upload %q = %d %s, want 403 Access denied", p, got.status, got.body)
			}
		}
	}

	// Not escapes, but hostile all the same: answered from inside the base
	// dir, with no 403 and nothing outside touched.
	long := strings.Repeat("a", 300)
	deep := strings.Repeat("d/", 3000) + "f"
	for _, tc := range []struct {
		path                      string
		download, list, upload    int
		exists                    bool
		createdInside, leaveCheck string
	}{
		// Leading slashes are stripped (legacy semantics), so these name
		// files below the base dir, which do not exist.
		{path: "/etc/passwd", download: 404, list: 404, upload: 200, createdInside: "etc/passwd"},
		{path: f.secret, download: 404, list: 404, upload: 200, createdInside: strings.TrimPrefix(f.secret, "/")},
		{path: "loop1", download: 404, list: 404, upload: 500},
		{path: "loop1/x", download: 404, list: 404, upload: 500},
		{path: long, download: 404, list: 404, upload: 500},
		{path: long + "/" + long, download: 404, list: 404, upload: 500},
		{path: deep, download: 404, list: 404, upload: 200},                          // inside, just deep: os.Root walks it without PATH_MAX limits
		{path: "inside.txt/..", download: 404, list: 200, upload: 500, exists: true}, // cleans to the base dir
	} {
		name := tc.path
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if got := f.get(t, "/download/"+enc(tc.path)); got.status != tc.download {
			t.Errorf("download %s = %d %s, want %d", name, got.status, got.body, tc.download)
		}
		if got := f.get(t, "/list/"+enc(tc.path)); got.status != tc.list {
			t.Errorf("list %s = %d %s, want %d", name, got.status, got.body, tc.list)
		}
		wantExists := `{"path":"` + tc.path + `","exists":false}`
		if tc.exists {
			wantExists = strings.Replace(wantExists, "false", "true", 1)
		}
		if got := f.get(t, "/exists/"+enc(tc.path)); got.status != 200 || got.body != wantExists {
			t.Errorf("exists %s = %d %s, want 200 %s", name, got.status, got.body, wantExists)
		}
		if got := f.upload(t, tc.path, "planted"); got.status != tc.upload {
			t.Errorf("upload %s = %d %.200s, want %d", name, got.status, got.body, tc.upload)
		}
		if tc.createdInside != "" {
			if b, err := os.ReadFile(filepath.Join(f.base, tc.createdInside)); err != nil || string(b) != "planted" {
				t.Errorf("upload %s should land at base/%s: %q, %v", name, tc.createdInside, b, err)
			}
		}
	}

	if diff := cmp.Diff(outsideBefore, snapshot(t, f.outside)); diff != "" {
		t.Errorf("the outside dir changed (-before,+after):\n%s", diff)
	}
	if after, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(after, passwd) {
		t.Errorf("/etc/passwd changed")
	}
}

// TestConfinementListOmitsEscapingLinks: a listing shows links that stay
// inside as their targets and never stats anything outside.
func TestConfinementListOmitsEscapingLinks(t *testing.T) {
	f := hostileFixture(t)
	got := f.get(t, "/list/")
	if got.status != http.StatusOK {
		t.Fatalf("list = %d %s", got.status, got.body)
	}
	for _, hidden := range []string{"escape-link", "secret-link", "rel-escape", "c1", "dng", "loop1", "rootfs", "etc-link"} {
		if strings.Contains(got.body, `"`+hidden+`"`) {
			t.Errorf("listing shows %s: %s", hidden, got.body)
		}
	}
	if !strings.Contains(got.body, `"inside.txt"`) || !strings.Contains(got.body, `"nested"`) {
		t.Errorf("listing misses inside entries: %s", got.body)
	}
}

// TestConfinementRace flips a directory inside the base dir to a symlink
// pointing outside and back, as fast as it can, while uploads and
// downloads go through it. Whichever way each race falls, nothing outside
// is written and the secret is never served: the check is made on a
// symlink-free path, and the I/O goes through an os.Root that refuses to
// leave the base dir even when the tree changes under it.
func TestConfinementRace(t *testing.T) {
	f := newFixture(t, Options{})
	flip := filepath.Join(f.base, "flip")
	outsideBefore := snapshot(t, f.outside)

	var stop atomic.Bool
	var wg sync.WaitGroup
	flips := 0
	wg.Go(func() {
		for !stop.Load() {
			flips++
			// RemoveAll removes a symlink itself, never its target.
			_ = os.RemoveAll(flip)
			_ = os.Symlink(f.outside, flip) // escaping
			runtimeYield()
			_ = os.Remove(flip)
			_ = os.Mkdir(flip, 0o755) // harmless
			runtimeYield()
		}
	})
	deadline := time.Now().Add(500 * time.Millisecond)
	requests := 0
	for time.Now().Before(deadline) {
		requests++
		got := f.get(t, "/download/flip%2Fsecret.txt")
		if strings.Contains(got.body, strings.TrimSpace(secretContent)) {
			t.Errorf("download through a flipping link served the secret")
		}
		f.upload(t, "flip/secret.txt", "overwritten")
		f.upload(t, "flip/new.txt", "planted")
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d request rounds against %d flips", requests, flips)
	if diff := cmp.Diff(outsideBefore, snapshot(t, f.outside)); diff != "" {
		t.Errorf("after %d racing requests (%d flips) the outside dir changed (-before,+after):\n%s", requests, flips, diff)
	}
}

// runtimeYield lets the requests run between flips.
func runtimeYield() { time.Sleep(50 * time.Microsecond) }
