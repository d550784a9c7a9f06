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

// Package images checks the Dockerfiles under cmd/ as far as a machine
// without a container engine can: every binary has one; its build stage
// compiles from exactly the files it copies, statically, with the version
// stamped; and the final image runs as a non-root user.
package images

import (
	"bufio"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

type copyInstr struct {
	srcs []string
	dst  string
}

// dockerfile is what the checks need from one Dockerfile.
type dockerfile struct {
	copies     []copyInstr // build-stage COPYs (not --from)
	pkg        string      // the ./cmd/... package built
	ldflagsX   []string    // -X name=value pairs
	finalFrom  string
	finalUser  string
	entrypoint string
}

var (
	buildPkg = regexp.MustCompile(`-o /out/\S+ (\./cmd/\S+)`)
	xFlag    = regexp.MustCompile(`-X (\S+)=(\S+)`)
)

func parse(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, then read instruction by instruction.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var d dockerfile
	stages := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			stages++
			d.finalFrom, d.finalUser, d.entrypoint = rest, "", ""
		case "COPY":
			if stages == 1 && !strings.HasPrefix(rest, "--from") {
				f := strings.Fields(rest)
				d.copies = append(d.copies, copyInstr{srcs: f[:len(f)-1], dst: f[len(f)-1]})
			}
		case "RUN":
			if m := buildPkg.FindStringSubmatch(rest); m != nil {
				d.pkg = m[1]
				for _, x := range xFlag.FindAllStringSubmatch(rest, -1) {
					d.ldflagsX = append(d.ldflagsX, x[1]+"="+x[2])
				}
			}
		case "USER":
			d.finalUser = rest
		case "ENTRYPOINT":
			d.entrypoint = rest
		}
	}
	return d
}

// TestEveryBinaryHasADockerfile: every binary under cmd/ runs in the
// cluster and ships as an image, except kubectl plugins (kubectl-*), which
// run on the user's machine and ship as release archives with a krew
// manifest (hack/release-manifests.sh).
func TestEveryBinaryHasADockerfile(t *testing.T) {
	root := repoRoot(t)
	mains, err := filepath.Glob(filepath.Join(root, "cmd", "*", "main.go"))
	if err != nil || len(mains) < 3 {
		t.Fatalf("binaries under cmd/: %v %v", mains, err)
	}
	for _, m := range mains {
		if strings.HasPrefix(filepath.Base(filepath.Dir(m)), "kubectl-") {
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "Dockerfile")); err != nil {
			t.Errorf("%s has no Dockerfile", filepath.Dir(m))
		}
	}
}

func TestDockerfiles(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "cmd", "*", "Dockerfile"))
	for _, path := range files {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			d := parse(t, path)
			checkFinalStage(t, d)
			if d.pkg != "./cmd/"+name {
				t.Fatalf("the build stage builds %q, want ./cmd/%s", d.pkg, name)
			}
			bin := buildLikeTheDockerfile(t, root, d)
			checkStatic(t, bin)
			out, err := exec.Command(bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "v0.0.0-images-test") {
				t.Errorf("%s --version does not show the version stamped by the Dockerfile's ldflags:\n%s", name, out)
			}
		})
	}
}

// checkFinalStage: a non-root numeric user (kubelet can then enforce
// runAsNonRoot without a name lookup) and an entrypoint.
func checkFinalStage(t *testing.T, d dockerfile) {
	t.Helper()
	uid, _, _ := strings.Cut(d.finalUser, ":")
	n, err := strconv.Atoi(uid)
	if err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root uid", d.finalUser)
	}
	if d.entrypoint == "" {
		t.Error("final stage has no ENTRYPOINT")
	}
	if d.finalFrom == "" {
		t.Error("no FROM")
	}
}

// buildLikeTheDockerfile copies exactly what the build stage COPYs into an
// empty directory and builds there with CGO off and the same -X flags, so a
// Dockerfile that forgets a source directory fails here.
func buildLikeTheDockerfile(t *testing.T, root string, d dockerfile) string {
	t.Helper()
	ctx := t.TempDir()
	for _, c := range d.copies {
		for _, src := range c.srcs {
			dst := filepath.Join(ctx, c.dst)
			if strings.HasSuffix(c.dst, "/") && !strings.HasSuffix(src, "/") {
				dst = filepath.Join(dst, filepath.Base(src)) // COPY file dir/
			}
			if err := copyPath(filepath.Join(root, src), dst); err != nil {
				t.Fatalf("COPY %s %s: %v", src, c.dst, err)
			}
		}
	}
	var xs []string
	for _, x := range d.ldflagsX {
		x = strings.ReplaceAll(x, "${VERSION}", "v0.0.0-images-test")
		x = strings.ReplaceAll(x, "${GIT_COMMIT}", "images-test")
		x = strings.ReplaceAll(x, "${BUILD_DATE}", "1970-01-01T00:00:00Z")
		xs = append(xs, "-X", x)
	}
	if len(xs) == 0 {
		t.Fatal("the build stage stamps no version (-X flags)")
	}
	bin := filepath.Join(t.TempDir(), "bin")
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w " + strings.Join(xs, " "), "-o", bin}, d.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = ctx
	// Modules come from the local cache only: the check must not reach the
	// network, and a missing source directory must fail, not be looked up.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building from the Dockerfile's context: %v\n%s", err, out)
	}
	return bin
}

// checkStatic: no program interpreter and no shared libraries, so the
// binary runs on distroless/static or scratch.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a program interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v: not static", libs)
	}
}

func copyPath(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
