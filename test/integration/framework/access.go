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

package framework

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/router"
)

// rbacWait bounds the wait for a new RoleBinding to take effect, and for
// a router's cache to sync.
const rbacWait = 60 * time.Second

// CreateNamespace creates a second namespace for the test, named after the
// test's own plus suffix, and deletes it when the test ends.
func CreateNamespace(t testing.TB, env *Env, suffix string) string {
	t.Helper()
	ns := env.Namespace + "-" + suffix
	if _, err := env.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// ServiceAccountToken creates ServiceAccount ns/name if needed and returns
// a token for it from the TokenRequest API, bound to audiences (none: the
// API server's own, a full API token).
func ServiceAccountToken(t testing.TB, env *Env, ns, name string, audiences ...string) string {
	t.Helper()
	ctx := context.Background()
	_, err := env.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tr, err := env.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600), Audiences: audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// GrantSandboxProxy lets ServiceAccount ns/sa get sandboxes/proxy in ns
// (what the router's subjectaccessreview mode asks) and waits until the
// API server's authorizer agrees: routers cache denials, so a token used
// before RBAC is in effect would be remembered as denied.
func GrantSandboxProxy(t testing.TB, env *Env, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "sandbox-proxy-" + sa},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{agentsv1beta1.GroupName},
			Resources: []string{agentsv1beta1.SandboxesResource.Resource + "/" + router.ProxySubresource},
			Verbs:     []string{router.ProxyVerb},
		}},
	}
	if _, err := env.Kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	if _, err := env.Kube.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + sa
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, rbacWait, true, func(ctx context.Context) (bool, error) {
		sar, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: router.ProxyVerb, Group: agentsv1beta1.GroupName,
					Resource: agentsv1beta1.SandboxesResource.Resource, Subresource: router.ProxySubresource, Name: "any",
				},
			},
		}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s never got get on sandboxes/proxy in %s", user, ns)
	}
}

// StartRouter serves an in-process router on 127.0.0.1 for the test, with
// loopback Pod IPs allowed (kwok gives Pods loopback addresses) and
// allow-all unless mutate says otherwise, and waits for its cache. It
// returns the router's URL; everything stops when the test ends.
func StartRouter(t testing.TB, env *Env, mutate func(*router.Options)) (string, *router.Router) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	o := router.DefaultOptions()
	o.KubeClient = env.Kube
	o.AgentsClient = env.Agents
	o.AllowLoopbackPodIP = true
	o.Logger = klog.FromContext(ctx)
	if mutate != nil {
		mutate(&o)
	}
	r, err := router.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.Start(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, rbacWait)
	defer syncCancel()
	if !r.WaitForCacheSync(syncCtx) {
		t.Fatal("the router's cache never synced")
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		srv.Close()
		r.CloseIdleConnections()
	})
	return srv.URL, r
}
