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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func TestOnlyActivityChanged(t *testing.T) {
	base := func() *agentsv1beta1.Sandbox {
		return &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{
			Name: "s", ResourceVersion: "1", Generation: 1,
			Annotations: map[string]string{agentsv1beta1.IdleTimeoutAnnotation: "15m"},
		}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(n *agentsv1beta1.Sandbox)
		want   bool
	}{
		{"activity written", func(n *agentsv1beta1.Sandbox) {
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
		}, true},
		{"activity and managed fields", func(n *agentsv1beta1.Sandbox) {
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
			n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "router"}}
		}, true},
		{"resync: same resourceVersion", func(n *agentsv1beta1.Sandbox) {
			n.ResourceVersion = "1"
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
		}, false},
		{"another annotation too", func(n *agentsv1beta1.Sandbox) {
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
			n.Annotations[agentsv1beta1.IdleTimeoutAnnotation] = "1h"
		}, false},
		{"spec too", func(n *agentsv1beta1.Sandbox) {
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
			n.Generation = 2
		}, false},
		{"status too", func(n *agentsv1beta1.Sandbox) {
			n.Annotations[agentsv1beta1.LastActivityAnnotation] = "2026-11-29T12:00:00Z"
			n.Status.PodIPs = []string{"127.0.0.9"}
		}, false},
		{"nothing but the resourceVersion", func(*agentsv1beta1.Sandbox) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, n := base(), base()
			n.ResourceVersion = "2"
			tc.mutate(n)
			if got := OnlyActivityChanged(o, n); got != tc.want {
				t.Errorf("OnlyActivityChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
