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

// Package framework runs integration tests against a real kube-apiserver and
// etcd, started once per test package from TestMain:
//
//	func TestMain(m *testing.M) { framework.Main(m) }
//
// Each test calls Setup for clients and a namespace of its own. Packages
// that need running Pods start with framework.Main(m, framework.WithNodes(3))
// to add kube-controller-manager, the scheduler and kwok fake nodes.
//
// The binaries are named by the environment variables of
// localcluster.BinariesFromEnv. When they are unset, tests skip, unless
// AGENT_SANDBOX_INTEGRATION=required (what 'make test' sets), in which case
// the package fails: CI must never pass by skipping.
package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	"github.com/agentsandbox/agent-sandbox/pkg/clients/kubeclient"
	"github.com/agentsandbox/agent-sandbox/test/localcluster"
)

// RequireEnv names the variable that, set to "required", turns a missing
// control plane from a skip into a failure.
const RequireEnv = "AGENT_SANDBOX_INTEGRATION"

type options struct {
	nodes    int
	auditLog bool
}

// Option configures Main.
type Option func(*options)

// WithNodes also starts kube-controller-manager, the scheduler and kwok with
// n fake nodes, for tests that need Pods to run or garbage collection.
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

var (
	controlPlane *localcluster.ControlPlane
	binaries     localcluster.Binaries
	skipReason   string
	podCIDRSlot  int
)

// Main starts the control plane, installs the CRDs, runs the package's
// tests and stops everything it started. It never returns.
func Main(m *testing.M, opts ...Option) {
	os.Exit(run(m, opts...))
}

func run(m *testing.M, opts ...Option) int {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	binaries, err = localcluster.BinariesFromEnv()
	if err != nil {
		if os.Getenv(RequireEnv) == "required" {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
			return 1
		}
		skipReason = err.Error()
		return m.Run()
	}

	dir, err := os.MkdirTemp("", "agent-sandbox-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
	}
	// Packages run in parallel, each with its own control plane; a slot of
	// its own keeps their Pod IPs, to which tests bind servers, apart.
	slot, releaseSlot, err := localcluster.ClaimPodCIDRSlot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer releaseSlot()
	podCIDRSlot = slot
	controlPlane, err = localcluster.Start(ctx, localcluster.Options{Dir: dir, Binaries: binaries, Logf: logf, PodCIDRSlot: slot,
		AuditLog: o.auditLog})
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: starting control plane: %v\n", err)
		return 1
	}
	code := func() int {
		// CRDs first: the garbage collector discovers resources when it
		// starts and only every 30s afterwards.
		if _, err := localcluster.InstallCRDs(ctx, controlPlane.Config, filepath.Join(RepoRoot(), "manifests", "crd")); err != nil {
			fmt.Fprintf(os.Stderr, "integration: installing CRDs: %v\n", err)
			return 1
		}
		if o.nodes > 0 {
			if err := controlPlane.StartWorkloads(ctx, o.nodes); err != nil {
				fmt.Fprintf(os.Stderr, "integration: %v\n", err)
				return 1
			}
		}
		return m.Run()
	}()
	if err := controlPlane.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: stopping control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		// Only the logs: etcd's data is ~100 MB a package, and failed runs
		// on a shared machine must not fill its disk.
		keepOnly(dir, "logs")
		fmt.Fprintf(os.Stderr, "integration: control plane logs kept in %s\n", filepath.Join(dir, "logs"))
	}
	return code
}

// keepOnly removes everything in dir but the entry named keep.
func keepOnly(dir, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != keep {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// PodCIDRSlot is the pod CIDR slot of the package's control plane: what a
// process node (test/processnode) started by a test must be given, so its
// Pod IPs are unique on the machine too.
func PodCIDRSlot() int { return podCIDRSlot }

// RepoRoot is the module root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Env is what one test gets: clients for the shared control plane and a
// namespace of its own, deleted when the test ends.
type Env struct {
	Namespace string
	// Config is an admin client config; copy it before changing it.
	Config       *rest.Config
	Kube         kubernetes.Interface
	Agents       clientset.Interface
	Dynamic      dynamic.Interface
	APIExtension apiextensionsclient.Interface
	// ControllerKube is the narrow client of the built-in groups the
	// controllers and the conversion webhook take (pkg/clients/kubeclient).
	ControllerKube kubeclient.Interface
	// Kubeconfig is the path of an admin kubeconfig, for kubectl.
	Kubeconfig string
	// Binaries of the control plane, e.g. Binaries.Kubectl.
	Binaries localcluster.Binaries
}

// Setup skips the test when no control plane runs (see the package doc),
// and otherwise creates a namespace for it.
func Setup(t testing.TB) *Env {
	t.Helper()
	if controlPlane == nil {
		if skipReason == "" {
			t.Fatal("framework.Setup called without framework.Main in TestMain")
		}
		t.Skip(skipReason)
	}
	cfg := rest.CopyConfig(controlPlane.Config)
	rest.AddUserAgent(cfg, "integration-"+sanitize(t.Name()))
	e := &Env{Config: cfg, Kubeconfig: controlPlane.KubeconfigPath, Binaries: binaries}
	var err error
	if e.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.Agents, err = clientset.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.APIExtension, err = apiextensionsclient.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.ControllerKube, err = kubeclient.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}

	e.Namespace = namespaceFor(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Namespace}}
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	// Pods are refused until the namespace has its default ServiceAccount,
	// which kube-controller-manager creates a moment later (if it runs at
	// all); creating it here removes that race.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: e.Namespace}}
	if _, err := e.Kube.CoreV1().ServiceAccounts(e.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating default service account: %v", err)
	}
	t.Cleanup(func() {
		err := e.Kube.CoreV1().Namespaces().Delete(context.Background(), e.Namespace, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", e.Namespace, err)
		}
	})
	return e
}

// Context returns a context cancelled when the test ends or after timeout.
func Context(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func namespaceFor(t testing.TB) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := sanitize(t.Name())
	if len(name) > 48 {
		name = name[:48]
	}
	return strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
}

// sanitize turns a test name into a DNS label fragment.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
