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

package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/cli"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
	"github.com/agentsandbox/agent-sandbox/pkg/runtime"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/test/processnode"
)

var (
	// runtimeImage is what hack/e2e-kind.sh builds and loads into kind.
	runtimeImage  = envOr("E2E_RUNTIME_IMAGE", "ghcr.io/agentsandbox/sandbox-runtime:e2e")
	onProcessNode = os.Getenv("E2E_PROCESS_NODE") == "true"
)

// workspaceVolume is the sandboxes' PersistentVolumeClaim, mounted on the
// runtime's base dir (every relative path of the file API and every
// command's working directory), so what is written there survives a
// suspend.
const workspaceVolume = "workspace"

// createRuntimePool makes a template whose sandboxes run the sandbox
// runtime with a PersistentVolumeClaim on its base dir, and a warm pool of
// one, and waits until that member is Ready. On the process node the Pods
// select it and the claim is of its StorageClass; elsewhere the cluster's
// default StorageClass provisions it.
func createRuntimePool(t *testing.T, ns, name string) {
	t.Helper()
	spec := corev1.PodSpec{Containers: []corev1.Container{{
		Name:         "runtime",
		Image:        runtimeImage,
		Ports:        []corev1.ContainerPort{{ContainerPort: sdk.DefaultServerPort}},
		VolumeMounts: []corev1.VolumeMount{{Name: workspaceVolume, MountPath: runtime.DefaultBaseDir}},
	}}}
	claim := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceStorage: resource.MustParse("64Mi"),
		}},
	}
	if onProcessNode {
		processnode.Schedule(&spec)
		claim.StorageClassName = ptr.To(processnode.StorageClassName)
	}
	ctx := context.Background()
	if _, err := agents.ExtensionsV1beta1().SandboxTemplates(ns).Create(ctx, &extv1beta1.SandboxTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxTemplateSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{
			PodTemplate: agentsv1beta1.PodTemplate{Spec: spec},
			VolumeClaimTemplates: []agentsv1beta1.PersistentVolumeClaimTemplate{{
				EmbeddedObjectMetadata: agentsv1beta1.EmbeddedObjectMetadata{Name: workspaceVolume},
				Spec:                   claim,
			}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := agents.ExtensionsV1beta1().SandboxWarmPools(ns).Create(ctx, &extv1beta1.SandboxWarmPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: extv1beta1.SandboxWarmPoolSpec{
			Replicas:    ptr.To[int32](1),
			TemplateRef: extv1beta1.SandboxTemplateRef{Name: name},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPoolReady(t, ns, name, 1)
}

// routerToken makes ServiceAccount sa in ns and returns a token for it
// from the TokenRequest API, bound to the shipped router's audience. With
// allowed, a Role lets sa get sandboxes/proxy in ns: the permission the
// router's SubjectAccessReview asks about.
func routerToken(t *testing.T, ns, sa string, allowed bool) string {
	t.Helper()
	ctx := context.Background()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if allowed {
		if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: sa + "-sandbox-proxy"},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{agentsv1beta1.GroupName},
				Resources: []string{"sandboxes/proxy"},
				Verbs:     []string{"get"},
			}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa + "-sandbox-proxy"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa + "-sandbox-proxy"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{router.ShippedAudience},
			ExpirationSeconds: ptr.To[int64](3600),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// routerURL is E2E_ROUTER_URL, else a port-forward to the router Service
// for the test's duration.
func routerURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("E2E_ROUTER_URL"); u != "" {
		return u
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	u, stop, err := cli.PortForwardRouter(ctx, restConfig, cli.DefaultRouterNamespace, cli.DefaultRouterService, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return u
}

// waitReleased waits until the claim and the Sandbox it held are deleted.
func waitReleased(t *testing.T, ns, claim, sandbox string) {
	t.Helper()
	waitGone(t, "claim "+claim, func(ctx context.Context) error {
		_, err := agents.ExtensionsV1beta1().SandboxClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		return err
	})
	waitGone(t, "Sandbox "+sandbox, func(ctx context.Context) error {
		_, err := getSandbox(ctx, ns, sandbox)
		return err
	})
}

// payload is every byte value, so an upload or download that mangles
// encodings, newlines or NULs shows.
func payload() []byte {
	b := make([]byte, 0, 3*256)
	for range 3 {
		for i := range 256 {
			b = append(b, byte(i))
		}
	}
	return b
}

// TestDataPlaneSDK drives a sandbox through the router with the Go SDK:
// claim from a warm pool, exec, upload and download, a streamed command,
// suspend and resume with the uploaded file still there, release. The
// router authorizes with SubjectAccessReview: a token without the
// permission is refused, and so is a request without a token.
func TestDataPlaneSDK(t *testing.T) {
	ns := newNamespace(t)
	createRuntimePool(t, ns, "runtime")
	token := routerToken(t, ns, "agent", true)
	base := routerURL(t)
	c, err := sdk.NewClient(restConfig, sdk.WithRouterURL(base), sdk.WithBearerToken(token),
		sdk.WithDefaultNamespace(ns), sdk.WithDefaultReadyTimeout(waitTimeout))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTimeout)
	defer cancel()

	sb, err := c.Create(ctx, "runtime", sdk.WithClaimName("sdk"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	if got := sb.LaunchType(); got != agentsv1beta1.LaunchTypeWarm {
		t.Errorf("launch type %q, want %q (the pool had a Ready member)", got, agentsv1beta1.LaunchTypeWarm)
	}

	// exec: output of both streams and the exit code.
	res, err := sb.Run(ctx, `sh -c 'echo out; echo err >&2; exit 3'`)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out\n" || res.Stderr != "err\n" || res.ExitCode != 3 {
		t.Errorf("run: %+v, want stdout \"out\\n\", stderr \"err\\n\", exit code 3", res)
	}

	// Upload and download, on the volume.
	data := payload()
	if err := sb.Write(ctx, "notes/data.bin", data); err != nil {
		t.Fatal(err)
	}
	got, err := sb.Read(ctx, "notes/data.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("downloaded %d bytes that differ from the %d uploaded", len(got), len(data))
	}

	// A streamed command: it prints, then waits for a file that this test
	// writes only once it has read that output, so the output must arrive
	// while the command runs.
	cs, err := sb.Stream(ctx, `sh -c 'echo started; while [ ! -e go ]; do sleep 0.1; done; echo finished'`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close() }()
	var out strings.Builder
	for !strings.Contains(out.String(), "started\n") && cs.Next() {
		out.WriteString(cs.Chunk().Data)
	}
	if !strings.Contains(out.String(), "started\n") {
		t.Fatalf("the stream ended (%v) before the command's first line; got %q", cs.Err(), out.String())
	}
	if err := sb.Write(ctx, "go", nil); err != nil {
		t.Fatal(err)
	}
	for cs.Next() {
		out.WriteString(cs.Chunk().Data)
	}
	if cs.Err() != nil || cs.ExitCode() != 0 || out.String() != "started\nfinished\n" {
		t.Errorf("stream: output %q, exit code %d, err %v; want \"started\\nfinished\\n\", 0, nil", out.String(), cs.ExitCode(), cs.Err())
	}

	// The router's authorization: a token whose ServiceAccount may not get
	// sandboxes/proxy is refused (403), a request without a token too (401).
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"a token without the permission", routerToken(t, ns, "stranger", false), http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		opts := []sdk.ClientOption{sdk.WithRouterURL(base), sdk.WithDefaultNamespace(ns)}
		if tc.token != "" {
			opts = append(opts, sdk.WithBearerToken(tc.token))
		}
		other, err := sdk.NewClient(restConfig, opts...)
		if err != nil {
			t.Fatal(err)
		}
		h, err := other.Attach(ctx, "sdk")
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Run(ctx, "true")
		if he := (*sdk.HTTPError)(nil); !errors.As(err, &he) || he.StatusCode != tc.want {
			t.Errorf("run with %s: %v, want HTTP %d", tc.name, err, tc.want)
		}
		h.Disconnect()
	}

	// Suspend: the Pod goes, the Sandbox and its volume stay.
	name, err := c.Suspend(ctx, "sdk", sdk.WithWaitForReady())
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, "Pod "+sb.PodName(), func(ctx context.Context) error {
		_, err := kube.CoreV1().Pods(ns).Get(ctx, sb.PodName(), metav1.GetOptions{})
		return err
	})
	if _, err := c.Resume(ctx, "sdk", sdk.WithWaitForReady()); err != nil {
		t.Fatal(err)
	}
	// A new handle: the resumed sandbox has a new Pod (and IP).
	sb.Disconnect()
	sb, err = c.Attach(ctx, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	got, err = sb.Read(ctx, "notes/data.bin")
	if err != nil {
		t.Fatalf("the uploaded file after suspend and resume: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("after suspend and resume, the file has %d bytes that differ from the %d uploaded", len(got), len(data))
	}

	// Release: the claim goes, and its Sandbox with it.
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitReleased(t, ns, "sdk", name)
}
