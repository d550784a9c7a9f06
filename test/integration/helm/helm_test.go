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

// Package helm installs, upgrades and uninstalls the packaged Helm chart
// on the local control plane. Nothing runs images here, so the controller
// runs as a local process the way the chart's Deployment configures it
// (its container args, read back from the installed Deployment) and as the
// chart's ServiceAccount (a token from the TokenRequest API), so it has
// exactly the permissions the chart's RBAC grants; a claim must get Ready
// under it with no request forbidden.
package helm

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	helmtest "github.com/agentsandbox/agent-sandbox/test/helm"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.WithNodes(1)) }

const (
	release        = "agent-sandbox"
	ns             = helmtest.ReleaseNamespace
	controllerName = "agent-sandbox-controller"
)

// controller is the controller binary running as the chart deploys it.
type controller struct {
	cmd     *exec.Cmd
	exited  chan error
	metrics string
}

// startController runs bin with the args of the installed Deployment's
// container, plus what only differs because it runs outside the cluster:
// a kubeconfig holding the chart ServiceAccount's token, the Lease's
// namespace (in a Pod, its own), loopback listeners, and the webhook
// reached by URL (no Service routes to a local process).
func startController(t *testing.T, env *framework.Env, bin, kubeconfig, logName string) *controller {
	t.Helper()
	d, err := env.Kube.AppsV1().Deployments(ns).Get(context.Background(), controllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(d.Spec.Template.Spec.Containers[0].Args)
	metrics, probe, webhook := framework.FreeAddr(t), framework.FreeAddr(t), framework.FreeAddr(t)
	_, webhookPort, _ := net.SplitHostPort(webhook)
	args = append(args, "--kubeconfig", kubeconfig, "--leader-election-namespace", ns,
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probe,
		"--webhook-port", webhookPort, "--webhook-url", "https://"+webhook+"/convert")
	cmd := exec.Command(bin, args...)
	logs, err := os.Create(filepath.Join(t.TempDir(), logName+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &controller{cmd: cmd, exited: make(chan error, 1), metrics: metrics}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			lines := strings.Split(string(b), "\n")
			t.Logf("%s log (last lines):\n%s", logName, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	ctx := framework.Context(t, time.Minute)
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		code, _ := framework.HTTPGet(ctx, "http://"+probe+"/readyz")
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("the controller (%v) never became ready", args)
	}
	return c
}

// stop sends SIGTERM (the controller releases its Lease) and waits.
func (c *controller) stop(t *testing.T) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		if err != nil {
			t.Logf("the controller exited after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Errorf("the controller did not exit within 30s of SIGTERM (killed: %v)", <-c.exited)
	}
}

// forbidden sums agent_sandbox_api_forbidden_requests_total: a request the
// chart's RBAC refused.
func (c *controller) forbidden(t *testing.T) []string {
	t.Helper()
	code, body := framework.HTTPGet(context.Background(), "http://"+c.metrics+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d %s", code, body)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "agent_sandbox_api_forbidden_requests_total{") && !strings.HasSuffix(line, " 0") {
			out = append(out, line)
		}
	}
	return out
}

// buildController compiles the controller into the test's temp dir.
func buildController(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), controllerName)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+controllerName)
	cmd.Dir = framework.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the controller: %v\n%s", err, out)
	}
	return bin
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// chart's ServiceAccount with a token from the TokenRequest API.
func serviceAccountKubeconfig(t *testing.T, env *framework.Env, sa string) string {
	t.Helper()
	if _, err := env.Kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), sa, metav1.GetOptions{}); err != nil {
		t.Fatalf("the chart's ServiceAccount: %v", err)
	}
	token := framework.ServiceAccountToken(t, env, ns, sa)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	if env.Config.CAFile != "" {
		cfg.Clusters["local"].CertificateAuthority = env.Config.CAFile
	}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa}
	cfg.CurrentContext = "local"
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// claimReady makes a pool of one and a claim on it, and waits for the
// claim to be Ready: the Sandbox, pool and claim controllers all worked.
func claimReady(t *testing.T, env *framework.Env, name string) {
	t.Helper()
	ctx := framework.Context(t, 2*time.Minute)
	ext := env.Agents.ExtensionsV1beta1()
	_, err := ext.SandboxTemplates(env.Namespace).Create(ctx, &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.SandboxWarmPools(env.Namespace).Create(ctx, &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxWarmPoolSpec{Replicas: ptr.To[int32](1), TemplateRef: extv1beta1.SandboxTemplateRef{Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ext.SandboxClaims(env.Namespace).Create(ctx, &extv1beta1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       extv1beta1.SandboxClaimSpec{WarmPoolRef: extv1beta1.SandboxWarmPoolRef{Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		c, err := ext.SandboxClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == string(agentsv1beta1.SandboxConditionReady) && cond.Status == metav1.ConditionTrue {
				return c.Status.SandboxStatus.Name != "", nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("claim %s never became Ready under the chart's controller: %v", name, err)
	}
}

func deploymentArgs(t *testing.T, env *framework.Env) []string {
	t.Helper()
	d, err := env.Kube.AppsV1().Deployments(ns).Get(context.Background(), controllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Args
}

// TestInstallUpgradeUninstall: helm install of the packaged chart brings
// up a working controller under the chart's RBAC, helm upgrade with a
// changed value changes the Deployment and the controller started from it,
// and helm uninstall removes every object the chart made but the CRDs.
func TestInstallUpgradeUninstall(t *testing.T) {
	env := framework.Setup(t)
	h := helmtest.New(t)
	chart := h.Package(t, "v0.1.0")
	bin := buildController(t)
	kc := []string{"--kubeconfig", env.Kubeconfig, "--namespace", ns}

	h.MustRun(t, append([]string{"install", release, chart, "--create-namespace",
		"--set", "controller.workers.sandbox=7"}, kc...)...)
	if args := deploymentArgs(t, env); !slices.Contains(args, "--sandbox-concurrent-workers=7") {
		t.Fatalf("installed Deployment args %v lack --sandbox-concurrent-workers=7", args)
	}
	kubeconfig := serviceAccountKubeconfig(t, env, controllerName)
	first := startController(t, env, bin, kubeconfig, "controller-install")
	claimReady(t, env, "after-install")
	if f := first.forbidden(t); len(f) > 0 {
		t.Errorf("the chart's RBAC refused the controller:\n%s", strings.Join(f, "\n"))
	}

	// Upgrade: another worker count; the Deployment changes (a new Pod
	// template, so Kubernetes rolls it) and the controller is restarted
	// from it, as the rollout would.
	before, err := env.Kube.AppsV1().Deployments(ns).Get(context.Background(), controllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.MustRun(t, append([]string{"upgrade", release, chart, "--reuse-values",
		"--set", "controller.workers.sandbox=9"}, kc...)...)
	after, err := env.Kube.AppsV1().Deployments(ns).Get(context.Background(), controllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := after.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--sandbox-concurrent-workers=9") || slices.Contains(args, "--sandbox-concurrent-workers=7") {
		t.Errorf("upgraded Deployment args %v: want --sandbox-concurrent-workers=9 only", args)
	}
	if after.Generation == before.Generation {
		t.Errorf("helm upgrade left the Deployment at generation %d", after.Generation)
	}
	first.stop(t)
	second := startController(t, env, bin, kubeconfig, "controller-upgrade")
	if !slices.Contains(second.cmd.Args, "--sandbox-concurrent-workers=9") {
		t.Errorf("the restarted controller runs with %v", second.cmd.Args)
	}
	claimReady(t, env, "after-upgrade")
	if f := second.forbidden(t); len(f) > 0 {
		t.Errorf("the chart's RBAC refused the upgraded controller:\n%s", strings.Join(f, "\n"))
	}
	second.stop(t)

	// Uninstall: every object of the release's manifest is gone; the CRDs
	// stay (Helm never deletes crds/, so no user's sandboxes go with them).
	manifest := h.MustRun(t, append([]string{"get", "manifest", release}, kc...)...)
	objs, err := helmtest.Decode(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("helm get manifest lists nothing")
	}
	h.MustRun(t, append([]string{"uninstall", release, "--wait"}, kc...)...)
	ctx := framework.Context(t, time.Minute)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Kube.Discovery()))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		r := env.Dynamic.Resource(mapping.Resource)
		err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var err error
			if o.GetNamespace() != "" {
				_, err = r.Namespace(o.GetNamespace()).Get(ctx, o.GetName(), metav1.GetOptions{})
			} else {
				_, err = r.Get(ctx, o.GetName(), metav1.GetOptions{})
			}
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("%s %s/%s is still there after helm uninstall", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}
	if _, err := env.APIExtension.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "sandboxes.agents.x-k8s.io", metav1.GetOptions{}); err != nil {
		t.Errorf("the CRDs must survive helm uninstall: %v", err)
	}
}
