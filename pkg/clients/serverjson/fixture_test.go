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

package serverjson

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/agentsandbox/agent-sandbox/generated/clientset/versioned/scheme"
	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

// pooledSandbox is a warm pool's member as the bench's pools make them:
// a pod template, pool labels, a Ready condition and three managers'
// fields.
func pooledSandbox() *agentsv1beta1.Sandbox {
	now := metav1.NewTime(time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC))
	fields := metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{".":{},"f:agents.x-k8s.io/pool":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"3b8e\"}":{}}},"f:spec":{".":{},"f:podTemplate":{".":{},"f:metadata":{},"f:spec":{".":{},"f:containers":{}}}}}`)
	return &agentsv1beta1.Sandbox{
		TypeMeta: metav1.TypeMeta{APIVersion: "agents.x-k8s.io/v1beta1", Kind: "Sandbox"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "pool-a-x7k2p", Namespace: "tenant-a", UID: "5f0c1a52-0d6e-4f43-a0b5-7f2f3c9e1d11",
			ResourceVersion: "48213", Generation: 1, CreationTimestamp: now,
			Labels:      map[string]string{"agents.x-k8s.io/pool": "3b8e9a1c", "agents.x-k8s.io/sandbox-name-hash": "9c1d2e3f"},
			Annotations: map[string]string{"agents.x-k8s.io/pod-template-hash": "7d9f8c6b5"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "extensions.agents.x-k8s.io/v1beta1", Kind: "SandboxWarmPool",
				Name: "pool-a", UID: "3b8e9a1c-1111-2222-3333-444455556666", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "agent-sandbox-controller", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "agents.x-k8s.io/v1beta1", Time: &now, FieldsType: "FieldsV1", FieldsV1: fields},
				{Manager: "agent-sandbox-controller", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "agents.x-k8s.io/v1beta1", Time: &now, FieldsType: "FieldsV1", FieldsV1: fields, Subresource: "status"},
			},
		},
		Spec: agentsv1beta1.SandboxSpec{SandboxBlueprint: agentsv1beta1.SandboxBlueprint{PodTemplate: agentsv1beta1.PodTemplate{
			ObjectMeta: agentsv1beta1.PodMetadata{Labels: map[string]string{"app": "agent"}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "agent", Image: "registry.example/agent-runtime:v1.4.2",
					Command: []string{"/runtime", "--listen=:8888"}, Ports: []corev1.ContainerPort{{ContainerPort: 8888, Protocol: corev1.ProtocolTCP}},
					Env: []corev1.EnvVar{{Name: "HOME", Value: "/work"}, {Name: "LANG", Value: "C.UTF-8"}}}},
				RestartPolicy: corev1.RestartPolicyAlways, AutomountServiceAccountToken: ptr.To(false),
			},
		}}},
		Status: agentsv1beta1.SandboxStatus{
			Service: "pool-a-x7k2p", ServiceFQDN: "pool-a-x7k2p.tenant-a.svc.cluster.local", LabelSelector: "agents.x-k8s.io/sandbox-name-hash=9c1d2e3f",
			PodIPs: []string{"127.0.5.17"}, NodeName: "kwok-node-3",
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now, Reason: "DependenciesReady", Message: "Pod is Ready; Service Exists"}},
		},
	}
}

// asServerWrites encodes obj as the API server writes a custom resource:
// through an unstructured map, whose keys encoding/json sorts, so
// apiVersion and kind come first.
func asServerWrites(t testing.TB, obj runtime.Object) []byte {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// watchFrame is one event of a watch stream as the API server writes it.
func watchFrame(eventType string, object []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"` + eventType + `","object":`)
	b.Write(object)
	b.WriteString("}\n")
	return b.Bytes()
}

// stockJSON is the JSON serializer info of the generated clientset's
// codecs, which NegotiatedSerializer replaces.
func stockJSON(t testing.TB) runtime.SerializerInfo {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.WithoutConversion().SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		t.Fatal("no JSON serializer in the scheme's codecs")
	}
	return info
}

func positionalJSON(t testing.TB) runtime.SerializerInfo {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(NegotiatedSerializer(scheme.Codecs.WithoutConversion(), scheme.Scheme).SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		t.Fatal("no JSON serializer in NegotiatedSerializer")
	}
	return info
}
