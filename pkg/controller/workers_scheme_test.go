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

package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// Every kind an Event of the controllers names, as regarding or related
// object, has a reference in the recorders' scheme: without one the
// recorder drops the Event (regarding) or its related object.
func TestEventSchemeNamesEveryEventObject(t *testing.T) {
	scheme, err := eventScheme(agentsv1beta1.Install)
	if err != nil {
		t.Fatal(err)
	}
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u"}
	for _, obj := range []runtime.Object{
		&agentsv1beta1.Sandbox{ObjectMeta: meta},
		&corev1.Pod{ObjectMeta: meta},
		&corev1.Service{ObjectMeta: meta},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta},
		&networkingv1.NetworkPolicy{ObjectMeta: meta},
	} {
		ref, err := reference.GetReference(scheme, obj)
		if err != nil {
			t.Errorf("%T: %v", obj, err)
			continue
		}
		if ref.Kind == "" || ref.APIVersion == "" || ref.Name != "x" {
			t.Errorf("%T: reference %+v", obj, ref)
		}
	}
}
