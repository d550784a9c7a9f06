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

package processnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"
)

// Schedule makes a Pod spec select the process nodes and tolerate their
// taint, so the scheduler binds it to one of them.
func Schedule(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[NodeLabel] = "true"
	for _, t := range spec.Tolerations {
		if t.Key == NodeLabel {
			return
		}
	}
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
		Key: NodeLabel, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule,
	})
}

// ScheduleOn is Schedule pinned to one process node by its hostname
// label: several tests of a package share one control plane, and a Node
// of a stopped process node stays registered.
func ScheduleOn(spec *corev1.PodSpec, node string) {
	Schedule(spec)
	spec.NodeSelector[corev1.LabelHostname] = node
}

// DeleteNodes deregisters the node's Nodes, for tests that share a control
// plane: the scheduler would otherwise keep binding Pods to them until
// their Leases expire. Run it after Stop.
func (n *Node) DeleteNodes(t testing.TB) {
	t.Helper()
	for _, name := range n.Names() {
		err := n.kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	}
}

// RepoRoot is the module root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var runtimeBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildRuntime builds cmd/sandbox-runtime once per test binary into
// _output/test/bin of the checkout and returns its path. Concurrent test
// binaries each build to a temporary name and rename it into place, so
// none ever runs a half-written file; Go's build cache makes every build
// after the first a relink.
func BuildRuntime(t testing.TB) string {
	t.Helper()
	runtimeBuild.once.Do(func() {
		root := RepoRoot()
		dir := filepath.Join(root, "_output", "test", "bin")
		if runtimeBuild.err = os.MkdirAll(dir, 0o755); runtimeBuild.err != nil {
			return
		}
		tmp, err := os.CreateTemp(dir, ".sandbox-runtime-*")
		if err != nil {
			runtimeBuild.err = err
			return
		}
		_ = tmp.Close()
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/sandbox-runtime")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp.Name())
			runtimeBuild.err = fmt.Errorf("building sandbox-runtime: %w\n%s", err, out)
			return
		}
		runtimeBuild.path = filepath.Join(dir, "sandbox-runtime")
		runtimeBuild.err = os.Rename(tmp.Name(), runtimeBuild.path)
	})
	if runtimeBuild.err != nil {
		t.Fatal(runtimeBuild.err)
	}
	return runtimeBuild.path
}

// StartForTest starts a process node for the test and stops it (killing
// its runtimes) when the test ends. Unset options get: the runtime from
// BuildRuntime, a state directory from t.TempDir, and runtimes that die
// with the test binary. Pass the control plane's slot in PodCIDRSlot
// (framework.PodCIDRSlot()).
func StartForTest(t testing.TB, cfg *rest.Config, opts Options) *Node {
	t.Helper()
	opts.Config = cfg
	if opts.RuntimeBinary == "" {
		opts.RuntimeBinary = BuildRuntime(t)
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	opts.KillRuntimesOnExit = true
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	n, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("starting process node: %v", err)
	}
	t.Cleanup(func() {
		n.Stop()
		cancel()
		n.DeleteNodes(t)
	})
	return n
}
