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

// Package manifests checks every kustomization under manifests/ and the
// rendered release files: they build, the API server accepts them
// (apply --dry-run=server, client- and server-side), and the workloads
// keep the security posture and pinned images a release promises.
package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(0)) }

// kustomizations are the directories users and our scripts build.
var kustomizations = []string{
	"manifests",
	"manifests/crd",
	"manifests/default",
	"manifests/release/core",
	"manifests/release/extensions",
	"manifests/overlays/dev",
	"manifests/overlays/kind",
	"manifests/overlays/router-tls",
	"manifests/router",
}

func run(t *testing.T, env *framework.Env, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(env.Binaries.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	cmd.Dir = framework.RepoRoot()
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func decode(t *testing.T, doc []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// ensureNamespace creates what a dry run of namespaced objects needs: a
// dry-run Namespace does not exist for the objects after it.
func ensureNamespace(t *testing.T, env *framework.Env, name string) {
	t.Helper()
	_, err := env.Kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func TestKustomizationsBuildAndApply(t *testing.T) {
	env := framework.Setup(t)
	ensureNamespace(t, env, "agent-sandbox-system")
	for _, dir := range kustomizations {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			out := run(t, env, nil, "kustomize", dir)
			if len(decode(t, out)) == 0 {
				t.Fatalf("%s renders nothing", dir)
			}
			run(t, env, out, "apply", "--dry-run=server", "-f", "-")
			// The CRDs here were installed naming the webhook Service, by
			// another field manager. Server-side apply of the dev overlay's
			// URL cannot take the Service away from that manager (null means
			// "no opinion" there), so it is checked on a fresh cluster by
			// make e2e-local instead; client-side apply above replaces it.
			if dir != "manifests/overlays/dev" {
				run(t, env, out, "apply", "--dry-run=server", "--server-side", "-f", "-")
			}
		})
	}
}

// TestRouterTLSOverlay: the HTTPS option serves only HTTPS, from the
// mounted Secret, on the port the Service and the NetworkPolicy open, and
// keeps the base's audience-bound tokens.
func TestRouterTLSOverlay(t *testing.T) {
	env := framework.Setup(t)
	objs := map[string]*unstructured.Unstructured{}
	for _, o := range decode(t, run(t, env, nil, "kustomize", "manifests/overlays/router-tls")) {
		objs[o.GetKind()+"/"+o.GetName()] = o
	}
	d, svc, np := objs["Deployment/sandbox-router"], objs["Service/sandbox-router-svc"], objs["NetworkPolicy/sandbox-router"]
	if d == nil || svc == nil || np == nil {
		t.Fatalf("rendered %v", keys(objs))
	}
	var dep appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(d.Object, &dep); err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--http-bind-address= ", "--https-bind-address=:8443", "--tls-cert-file=/etc/sandbox-router/tls/tls.crt",
		"--tls-key-file=/etc/sandbox-router/tls/tls.key", "--authz-tokenreview-audiences=agent-sandbox-router"} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("router args %q lack %q", args, want)
		}
	}
	vols := dep.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].Secret == nil || vols[0].Secret.SecretName != "sandbox-router-tls" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/sandbox-router/tls" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("TLS Secret not mounted read-only at /etc/sandbox-router/tls: %+v %+v", vols, c.VolumeMounts)
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != "8443" {
		t.Errorf("Service ports = %v, want 8443 only", ports)
	}
	ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	first, _ := ingress[0].(map[string]any)["ports"].([]any)
	if len(first) == 0 || fmt.Sprint(first[0].(map[string]any)["port"]) != "8443" {
		t.Errorf("NetworkPolicy proxy ingress = %v, want port 8443", ingress[0])
	}
}

// The monitoring component needs the Prometheus Operator's CRDs, which the
// local cluster lacks: it must build, on top of the core, and name the
// controller's metrics Service (its metric names are checked by the e2e
// suite against a live controller).
func TestMonitoringComponent(t *testing.T) {
	env := framework.Setup(t)
	kinds := map[string]*unstructured.Unstructured{}
	for _, o := range decode(t, renderWithComponent(t, env, "manifests/default", "manifests/components/monitoring")) {
		kinds[o.GetKind()+"/"+o.GetName()] = o
	}
	sm := kinds["ServiceMonitor/agent-sandbox-controller"]
	svc := kinds["Service/agent-sandbox-controller"]
	if sm == nil || kinds["PrometheusRule/agent-sandbox-controller"] == nil || svc == nil {
		t.Fatalf("rendered %v; want the ServiceMonitor, the PrometheusRule and the metrics Service", keys(kinds))
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range selector {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the metrics Service does not carry (%v)", k, v, svc.GetLabels())
		}
	}
	if svc2 := kinds["Service/agent-sandbox-webhook-service"]; svc2 != nil {
		matches := true
		for k, v := range selector {
			matches = matches && svc2.GetLabels()[k] == v
		}
		if matches {
			t.Error("the ServiceMonitor also selects the webhook Service, which serves no metrics")
		}
	}
}

// renderWithComponent builds the kustomization base (a directory of the
// repository) with component added, as a user's overlay would.
func renderWithComponent(t *testing.T, env *framework.Env, base, component string) []byte {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Join(framework.RepoRoot(), "_output"), "test-overlay-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../" + base + "\n" +
		"components:\n- ../../" + component + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	return run(t, env, nil, "kustomize", dir)
}

func keys(m map[string]*unstructured.Unstructured) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestReleaseManifests renders a release and checks what it promises:
// images pinned to the version, the API server accepts every file, and the
// workloads run locked down.
func TestReleaseManifests(t *testing.T) {
	env := framework.Setup(t)
	ensureNamespace(t, env, "agent-sandbox-system")
	const version = "v0.0.0-test"
	cmd := exec.Command("hack/release-manifests.sh")
	cmd.Dir = framework.RepoRoot()
	// The plugin for this machine only, and not copied into the tree: five
	// cross-compiles from a cold build cache took longer than the test's
	// timeout on a 2-core machine, and the test checks the manifests.
	cmd.Env = append(os.Environ(), "VERSION="+version, "IMAGE_PREFIX=registry.example/agents/",
		"PLUGIN_PLATFORMS="+goruntime.GOOS+"/"+goruntime.GOARCH, "MANIFEST_COPY=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("release-manifests: %v\n%s", err, out)
	}
	dir := filepath.Join(framework.RepoRoot(), "_output", "release", version)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	deployments := map[string]*appsv1.Deployment{}
	for _, file := range []string{"manifest.yaml", "extensions.yaml", "sandbox-router.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		run(t, env, b, "apply", "--dry-run=server", "-f", "-")
		for _, o := range decode(t, b) {
			if o.GetLabels()["app.kubernetes.io/version"] != version {
				t.Errorf("%s: %s/%s lacks app.kubernetes.io/version=%s", file, o.GetKind(), o.GetName(), version)
			}
			if o.GetKind() != "Deployment" {
				continue
			}
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, d); err != nil {
				t.Fatal(err)
			}
			deployments[file+"/"+d.Name] = d
		}
	}
	want := map[string]string{
		"manifest.yaml/agent-sandbox-controller":   "registry.example/agents/agent-sandbox-controller:" + version,
		"extensions.yaml/agent-sandbox-controller": "registry.example/agents/agent-sandbox-controller:" + version,
		"sandbox-router.yaml/sandbox-router":       "registry.example/agents/sandbox-router:" + version,
	}
	for key, image := range want {
		d := deployments[key]
		if d == nil {
			t.Errorf("%s: no Deployment", key)
			continue
		}
		checkLockedDown(t, key, d, image)
	}
	if args := deployments["extensions.yaml/agent-sandbox-controller"].Spec.Template.Spec.Containers[0].Args; !contains(args, "--extensions") {
		t.Errorf("extensions.yaml controller args %v lack --extensions", args)
	}
	if args := deployments["manifest.yaml/agent-sandbox-controller"].Spec.Template.Spec.Containers[0].Args; contains(args, "--extensions") {
		t.Errorf("manifest.yaml (core) controller args %v include --extensions", args)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkLockedDown asserts the restricted Pod Security profile and the
// operational basics on every container of d.
func checkLockedDown(t *testing.T, key string, d *appsv1.Deployment, image string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if psc := spec.SecurityContext; psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", key)
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Image != image {
			t.Errorf("%s: container %s image %q, want %q", key, c.Name, c.Image, image)
		}
		sc := c.SecurityContext
		nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
			(spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot)
		switch {
		case sc == nil:
			t.Errorf("%s: container %s has no securityContext", key, c.Name)
			continue
		case !nonRoot:
			t.Errorf("%s: container %s may run as root", key, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: container %s has a writable root filesystem", key, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: container %s allows privilege escalation", key, c.Name)
		case sc.Capabilities == nil || !contains(capNames(sc.Capabilities.Drop), "ALL"):
			t.Errorf("%s: container %s does not drop ALL capabilities", key, c.Name)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: container %s lacks liveness or readiness probes", key, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: container %s lacks CPU/memory requests or a memory limit", key, c.Name)
		}
	}
}

func capNames(caps []corev1.Capability) []string {
	var out []string
	for _, c := range caps {
		out = append(out, string(c))
	}
	return out
}

// The shipped NetworkPolicies admit only what must reach each workload:
// every container port of the controller and the router is covered by a
// rule, and the metrics ports (which name every tenant's namespaces and
// sandboxes) only from the monitoring namespace, by the label the API
// server sets and no tenant can forge. (Enforcement is the CNI's; the local
// cluster has none, so this checks what the policies say and that the API
// server accepts them, above.)
func TestNetworkPoliciesAdmitOnlyWhatMustReach(t *testing.T) {
	env := framework.Setup(t)
	monitoring := map[string]string{corev1.LabelMetadataName: "monitoring"}
	for _, tc := range []struct {
		dir, deployment, policy string
		metricsPort             int32
	}{
		{"manifests/default", "agent-sandbox-controller", "agent-sandbox-controller", 8080},
		{"manifests/router", "sandbox-router", "sandbox-router", 9090},
	} {
		t.Run(strings.ReplaceAll(tc.dir, "/", "_"), func(t *testing.T) {
			var d *appsv1.Deployment
			var np *networkingv1.NetworkPolicy
			for _, o := range decode(t, run(t, env, nil, "kustomize", tc.dir)) {
				switch {
				case o.GetKind() == "Deployment" && o.GetName() == tc.deployment:
					d = &appsv1.Deployment{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, d); err != nil {
						t.Fatal(err)
					}
				case o.GetKind() == "NetworkPolicy" && o.GetName() == tc.policy:
					np = &networkingv1.NetworkPolicy{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, np); err != nil {
						t.Fatal(err)
					}
				}
			}
			if d == nil || np == nil {
				t.Fatalf("%s renders no Deployment %s or no NetworkPolicy %s", tc.dir, tc.deployment, tc.policy)
			}
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Fatalf("the NetworkPolicy's podSelector %v does not select the %s Pods %v", np.Spec.PodSelector, tc.deployment, d.Spec.Template.Labels)
			}
			if !contains(policyTypes(np), string(networkingv1.PolicyTypeIngress)) {
				t.Fatal("the NetworkPolicy does not restrict ingress")
			}
			for _, rule := range np.Spec.Ingress {
				if len(rule.Ports) == 0 {
					t.Errorf("ingress rule %+v admits every port", rule)
				}
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					peers, covered := admitted(np, p)
					switch {
					case !covered:
						t.Errorf("container port %s/%d is admitted by no rule", p.Name, p.ContainerPort)
					case p.ContainerPort != tc.metricsPort:
					case len(peers) == 0:
						t.Errorf("metrics port %d is open to every source", p.ContainerPort)
					default:
						for _, peer := range peers {
							if peer.NamespaceSelector == nil || peer.PodSelector != nil || peer.IPBlock != nil ||
								len(peer.NamespaceSelector.MatchExpressions) > 0 ||
								!reflect.DeepEqual(peer.NamespaceSelector.MatchLabels, monitoring) {
								t.Errorf("metrics port %d admits %+v; want only the namespace labelled %v", p.ContainerPort, peer, monitoring)
							}
						}
					}
				}
			}
		})
	}
}

func policyTypes(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, p := range np.Spec.PolicyTypes {
		out = append(out, string(p))
	}
	return out
}

// admitted returns the peers the policy admits to container port p and
// whether any rule covers it; no peers with covered means every source.
func admitted(np *networkingv1.NetworkPolicy, p corev1.ContainerPort) ([]networkingv1.NetworkPolicyPeer, bool) {
	var peers []networkingv1.NetworkPolicyPeer
	covered := false
	for _, rule := range np.Spec.Ingress {
		for _, rp := range rule.Ports {
			match := rp.Port == nil ||
				(rp.Port.Type == intstr.Int && rp.Port.IntVal == p.ContainerPort) ||
				(rp.Port.Type == intstr.String && rp.Port.StrVal == p.Name)
			if !match {
				continue
			}
			if len(rule.From) == 0 {
				return nil, true
			}
			covered = true
			peers = append(peers, rule.From...)
		}
	}
	return peers, covered
}
