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
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The version both renderings are pinned to, as make release-manifests
// VERSION=... pins the release files and packages the chart.
const testVersion = "v0.1.0"

// renderRelease renders what a release applies, in order: each entry is a
// base under manifests/ and its components, rendered by the script that
// renders the release files. A later object replaces an earlier one of the
// same name, as kubectl apply of the files in order does (extensions.yaml
// carries the controller Deployment again, with --extensions).
func renderRelease(t *testing.T, files ...[]string) map[string]*unstructured.Unstructured {
	t.Helper()
	kubectl := Binary(t, "KUBECTL_BIN")
	objs := map[string]*unstructured.Unstructured{}
	for _, file := range files {
		args := append([]string{testVersion, "ghcr.io/agentsandbox/"}, file...)
		cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "render-release-manifest.sh"), args...)
		cmd.Env = append(os.Environ(), "KUBECTL_BIN="+kubectl)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("render-release-manifest.sh %v: %v\n%s", args, err, stderr.String())
		}
		decoded, err := Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decoded {
			objs[Key(o)] = o
		}
	}
	return objs
}

// Differences between the chart and the release that are intended, each
// with its reason. The comparison removes exactly these and nothing else.
//
//  1. Labels Helm's conventions add to every templated object
//     (helm.sh/chart, app.kubernetes.io/managed-by,
//     app.kubernetes.io/instance): they name the release, which kustomize
//     has no notion of. The chart keeps every label of the release
//     (app.kubernetes.io/version included), so selectors and policies that
//     match them work the same.
//  2. No app.kubernetes.io/version label on the CRDs: Helm installs crds/
//     untemplated (byte-for-byte copies of manifests/crd), so they carry
//     the labels of manifests/crd only.
//  3. No Namespace object: Helm creates the release's namespace
//     (helm install --create-namespace) and a Namespace in the chart
//     would clash with it. The restricted Pod Security label the release
//     sets on it is applied by the documented install command instead
//     (docs/install.md).
//  4. A blank line in the release's ValidatingAdmissionPolicy CEL:
//     kustomize's YAML round trip turns the line break that a folded
//     scalar (>-) keeps before a more-indented line into two. The chart
//     has the source's text (components/router-wake-idle/policy.yaml as
//     any YAML parser reads it); CEL ignores the whitespace either way.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"}

var releaseOnly = map[string]string{
	"Namespace//" + ReleaseNamespace: "difference 3: helm install --create-namespace makes it",
}

func normalizeChart(o *unstructured.Unstructured) {
	labels := o.GetLabels()
	for _, l := range helmOnlyLabels {
		delete(labels, l)
	}
	o.SetLabels(labels)
}

func normalizeRelease(o *unstructured.Unstructured) {
	if o.GetKind() == "ValidatingAdmissionPolicy" {
		validations, _, _ := unstructured.NestedSlice(o.Object, "spec", "validations")
		for _, v := range validations {
			v := v.(map[string]any)
			if e, ok := v["expression"].(string); ok {
				v["expression"] = strings.ReplaceAll(e, "\n\n", "\n")
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, validations, "spec", "validations"); err != nil {
			panic(err)
		}
	}
	if o.GetKind() == "CustomResourceDefinition" {
		labels := o.GetLabels()
		delete(labels, "app.kubernetes.io/version")
		if len(labels) == 0 {
			labels = nil
		}
		o.SetLabels(labels)
	}
}

// TestChartRendersTheRelease: for the same settings, the packaged chart
// renders the objects of the kustomize release files, but for the listed
// differences.
func TestChartRendersTheRelease(t *testing.T) {
	h := New(t)
	chart := h.Package(t, testVersion)
	core, ext := []string{"release/core"}, []string{"release/extensions"}
	cases := []struct {
		name    string
		set     []string
		release [][]string
	}{
		// manifest.yaml and extensions.yaml, what docs/install.md applies.
		{name: "defaults", release: [][]string{core, ext}},
		// manifest.yaml alone.
		{name: "core only", set: []string{"extensions.enabled=false"}, release: [][]string{core}},
		// All three files, manifest.yaml with the monitoring component.
		{name: "router and monitoring",
			set:     []string{"router.enabled=true", "monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true"},
			release: [][]string{{"release/core", "components/monitoring"}, ext, {"router"}}},
		// The router with the wake and idle component, chart values
		// router.wakeIdle.enabled.
		{name: "router wake and idle",
			set:     []string{"router.enabled=true", "router.wakeIdle.enabled=true"},
			release: [][]string{core, ext, {"router", "components/router-wake-idle"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			rendered, err := h.Template(chart, args...)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*unstructured.Unstructured{}
			for _, o := range rendered {
				if _, dup := got[Key(o)]; dup {
					t.Errorf("the chart renders %s twice", Key(o))
				}
				normalizeChart(o)
				got[Key(o)] = o
			}
			want := renderRelease(t, tc.release...)
			for k, o := range want {
				normalizeRelease(o)
				if _, ok := releaseOnly[k]; ok {
					if got[k] != nil {
						t.Errorf("%s is listed as a difference but the chart renders it too", k)
					}
					delete(want, k)
				}
			}
			all := map[string]bool{}
			for k := range got {
				all[k] = true
			}
			for k := range want {
				all[k] = true
			}
			keys := slices.Sorted(maps.Keys(all))
			for _, k := range keys {
				switch {
				case want[k] == nil:
					t.Errorf("%s: rendered by the chart only", k)
				case got[k] == nil:
					t.Errorf("%s: in the release only", k)
				default:
					if d := cmp.Diff(want[k].Object, got[k].Object); d != "" {
						t.Errorf("%s differs (-release +chart):\n%s", k, d)
					}
				}
			}
		})
	}
}
