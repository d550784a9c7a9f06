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

package clientconn

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// ProtobufConfig returns a copy of c whose requests and responses for
// built-in kinds (Pods, PVCs, Services, Events, Leases…) are protobuf, as
// kube-controller-manager's and kube-scheduler's are
// (--kube-api-content-type): client-go's typed clients default to JSON,
// and decoding the JSON of every Pod watch event is the largest share of
// a controller's CPU per claim. JSON stays acceptable for the odd
// response that has no protobuf form. Use it only for the built-in
// clientset: custom resources are served as JSON only.
func ProtobufConfig(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return c
}
