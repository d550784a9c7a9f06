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

package cli

import (
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8stesting "k8s.io/client-go/testing"
)

func routerService(target intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: DefaultRouterNamespace, Name: DefaultRouterService},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "router"},
			Ports:    []corev1.ServicePort{{Name: "proxy", Port: DefaultRouterPort, TargetPort: target}},
		},
	}
}

func routerPod(name string, phase corev1.PodPhase, ready bool, labels map[string]string) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: DefaultRouterNamespace, Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "router", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}, {Name: "proxy", ContainerPort: 18080}},
		}}},
		Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func TestRouterBackend(t *testing.T) {
	sel := map[string]string{"app": "router"}
	for name, tc := range map[string]struct {
		objs     []runtime.Object
		pod      string
		port     int
		errorHas string
	}{
		"named target port on the Ready Pod": {
			objs: []runtime.Object{routerService(intstr.FromString("proxy")),
				routerPod("a-pending", corev1.PodPending, false, sel),
				routerPod("b-unready", corev1.PodRunning, false, sel),
				routerPod("c-other-app", corev1.PodRunning, true, map[string]string{"app": "other"}),
				routerPod("d-ready", corev1.PodRunning, true, sel)},
			pod: "d-ready", port: 18080,
		},
		"numeric target port": {
			objs: []runtime.Object{routerService(intstr.FromInt32(8081)), routerPod("r", corev1.PodRunning, true, sel)},
			pod:  "r", port: 8081,
		},
		"no Ready Pod": {
			objs:     []runtime.Object{routerService(intstr.FromString("proxy")), routerPod("r", corev1.PodRunning, false, sel)},
			errorHas: "has no Ready Pod serving port proxy",
		},
		"no Service": {
			errorHas: "give --router-url to skip the port-forward",
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.objs...)
			pod, port, err := routerBackend(t.Context(), &clients{kube: f.kube}, DefaultRouterNamespace, DefaultRouterService)
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Errorf("error %v, want %q in it", err, tc.errorHas)
				}
				return
			}
			if err != nil || pod != tc.pod || port != tc.port {
				t.Errorf("routerBackend = %s, %d, %v; want %s, %d", pod, port, err, tc.pod, tc.port)
			}
		})
	}
}

func TestRouterTokenFromServiceAccount(t *testing.T) {
	f := newFixture(t)
	var asked *authenticationv1.TokenRequest
	f.kube.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" || a.GetNamespace() != "ns" {
			return false, nil, nil
		}
		asked = a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "minted"}}, nil
	})
	o := f.options()
	o.router.serviceAccount = "agent"
	c, _ := o.newClients()
	src, err := o.routerToken(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := src(t.Context()); tok != "minted" {
		t.Errorf("token %q, want the minted one, not the kubeconfig's", tok)
	}
	if asked == nil || len(asked.Spec.Audiences) != 1 || asked.Spec.Audiences[0] != DefaultRouterAudience ||
		asked.Spec.ExpirationSeconds == nil || *asked.Spec.ExpirationSeconds != 600 {
		t.Errorf("TokenRequest %+v: want audience %s, 600s", asked, DefaultRouterAudience)
	}
}
