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

package conversion

import (
	"net/http"
	"testing"
)

// poolMemberJSON is a warm pool member as the API server's v1alpha1 watch
// cache sends it for every write while v1alpha1 is served: stored as
// v1beta1, with its managedFields.
const poolMemberJSON = `{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"pool-a-x7k2p","generateName":"pool-a-","namespace":"team-a","uid":"0b7f3c1e-4a52-4d7e-9a51-0d6f3b9f2c11","resourceVersion":"184467","generation":1,"creationTimestamp":"2026-12-06T17:00:00Z",
"labels":{"agents.x-k8s.io/pool":"5d1c2a9e","agents.x-k8s.io/sandbox-template-ref-hash":"7c9f1b2d","agents.x-k8s.io/warm-pool-sandbox":"5d1c2a9e","app":"agent"},
"annotations":{"agents.x-k8s.io/pod-name":"pool-a-x7k2p","agents.x-k8s.io/template-generation":"3"},
"ownerReferences":[{"apiVersion":"extensions.agents.x-k8s.io/v1beta1","kind":"SandboxWarmPool","name":"pool-a","uid":"7a3e9d2c-11f0-4b7a-8c3d-5e6f7a8b9c0d","controller":true,"blockOwnerDeletion":true}],
"managedFields":[{"manager":"agent-sandbox-controller","operation":"Update","apiVersion":"agents.x-k8s.io/v1beta1","time":"2026-12-06T17:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:agents.x-k8s.io/pod-name":{},"f:agents.x-k8s.io/template-generation":{}},"f:generateName":{},"f:labels":{".":{},"f:agents.x-k8s.io/pool":{},"f:agents.x-k8s.io/sandbox-template-ref-hash":{},"f:agents.x-k8s.io/warm-pool-sandbox":{},"f:app":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"7a3e9d2c-11f0-4b7a-8c3d-5e6f7a8b9c0d\"}":{}}},"f:spec":{".":{},"f:operatingMode":{},"f:podTemplate":{".":{},"f:metadata":{".":{},"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:automountServiceAccountToken":{},"f:containers":{},"f:enableServiceLinks":{},"f:securityContext":{".":{},"f:runAsNonRoot":{},"f:seccompProfile":{".":{},"f:type":{}}}}}}}},
{"manager":"agent-sandbox-controller","operation":"Update","apiVersion":"agents.x-k8s.io/v1beta1","time":"2026-12-06T17:00:01Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:observedGeneration":{},"f:reason":{},"f:status":{},"f:type":{}}},"f:labelSelector":{},"f:podIPs":{}}},"subresource":"status"}]},
"spec":{"operatingMode":"Running","podTemplate":{"metadata":{"labels":{"app":"agent"}},"spec":{"automountServiceAccountToken":false,"enableServiceLinks":false,
"containers":[{"name":"runtime","image":"registry.example.com/agent-runtime:v1.4.2","command":["/runtime"],"args":["--listen=:8888","--workdir=/workspace"],"ports":[{"name":"http","containerPort":8888,"protocol":"TCP"}],
"env":[{"name":"HOME","value":"/workspace"},{"name":"LANG","value":"C.UTF-8"}],"resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"250m","memory":"256Mi"}},
"readinessProbe":{"httpGet":{"path":"/healthz","port":8888,"scheme":"HTTP"},"periodSeconds":2,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":3},
"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true,"runAsNonRoot":true,"runAsUser":1000},
"volumeMounts":[{"name":"workspace","mountPath":"/workspace"}]}],
"volumes":[{"name":"workspace","emptyDir":{"sizeLimit":"1Gi"}}],"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}}}}},
"status":{"conditions":[{"type":"Ready","status":"True","observedGeneration":1,"lastTransitionTime":"2026-12-06T17:00:01Z","reason":"DependenciesReady","message":"Pod is Ready; Service Exists"}],
"labelSelector":"agents.x-k8s.io/sandbox-name-hash=5a1b2c3d","podIPs":["127.0.3.17"]}}`

// BenchmarkHandleReview is one review of one pool member, v1beta1 to
// v1alpha1: what the API server asks for every Sandbox write while
// v1alpha1 is served.
func BenchmarkHandleReview(b *testing.B) {
	body := reviewOf(b, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1alpha1", poolMemberJSON)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, status, msg := HandleReview(body); status != http.StatusOK {
			b.Fatalf("status %d: %s", status, msg)
		}
	}
}
