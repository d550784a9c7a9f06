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

// Package helm runs the pinned helm binary (hack/helm.sh) on the chart in
// manifests/helm/agent-sandbox, for the chart's tests here and the
// install/upgrade/uninstall test in test/integration/helm. The chart is
// driven through the binary, as users drive it, so Helm's Go packages
// never enter this module.
//
// The binaries come from HELM_BIN (hack/helm.sh --path) and KUBECTL_BIN
// (hack/local-cluster/env.sh; kubectl carries kustomize). When one is
// unset the tests skip, unless AGENT_SANDBOX_INTEGRATION=required (what
// make verify and make test set), in which case they fail.
package helm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ReleaseNamespace is where the chart is meant to go: the CRDs' webhook
// Service and the sandboxes' default NetworkPolicy name it.
const ReleaseNamespace = "agent-sandbox-system"

// RepoRoot is the module root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ChartDir is the chart's source directory.
func ChartDir() string { return filepath.Join(RepoRoot(), "manifests", "helm", "agent-sandbox") }

// Binary returns the path in the environment variable name, skipping the
// test when it is unset (failing it under AGENT_SANDBOX_INTEGRATION=required).
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p := os.Getenv(name); p != "" {
		return p
	}
	msg := name + " is not set (hack/helm.sh --path, hack/local-cluster/env.sh)"
	if os.Getenv("AGENT_SANDBOX_INTEGRATION") == "required" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Helm runs the helm binary with its configuration, cache and data in a
// directory of the test's, so nothing of the user's (repositories,
// registry logins) is read or written.
type Helm struct {
	Bin string
	env []string
}

// New returns a Helm for HELM_BIN with a fresh home.
func New(t testing.TB) *Helm {
	t.Helper()
	bin := Binary(t, "HELM_BIN")
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	return &Helm{Bin: bin, env: env}
}

// Run runs helm ARGS and returns its standard output, and its standard
// error in the error when it fails.
func (h *Helm) Run(args ...string) ([]byte, error) {
	cmd := exec.Command(h.Bin, args...)
	cmd.Env = h.env
	cmd.Dir = RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &RunError{Args: args, Err: err, Stderr: stderr.String()}
	}
	return out, nil
}

// MustRun is Run failing the test on an error.
func (h *Helm) MustRun(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := h.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunError is a failed helm run.
type RunError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *RunError) Error() string {
	return "helm " + strings.Join(e.Args, " ") + ": " + e.Err.Error() + "\n" + e.Stderr
}

// Package packages the chart as a release does (make release-manifests):
// chart version version without its "v", appVersion version. It returns
// the archive's path.
func (h *Helm) Package(t testing.TB, version string) string {
	t.Helper()
	dir := t.TempDir()
	h.MustRun(t, "package", ChartDir(), "--destination", dir,
		"--version", strings.TrimPrefix(version, "v"), "--app-version", version)
	path := filepath.Join(dir, "agent-sandbox-"+strings.TrimPrefix(version, "v")+".tgz")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("helm package wrote no %s: %v", path, err)
	}
	return path
}

// Template renders chart (a directory or an archive) as release
// agent-sandbox in ReleaseNamespace, CRDs included, with extra helm
// arguments such as --set.
func (h *Helm) Template(chart string, args ...string) ([]*unstructured.Unstructured, error) {
	out, err := h.Run(append([]string{"template", "agent-sandbox", chart,
		"--namespace", ReleaseNamespace, "--include-crds"}, args...)...)
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// Decode splits a YAML stream into objects, skipping empty documents.
func Decode(stream []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// Key names an object: Kind/namespace/name.
func Key(o *unstructured.Unstructured) string {
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// Find returns the object of that kind and name, or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// ContainerArgs returns the args of the first container of Deployment
// name in objs, or nil.
func ContainerArgs(objs []*unstructured.Unstructured, name string) []string {
	d := Find(objs, "Deployment", name)
	if d == nil {
		return nil
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return nil
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return args
}
