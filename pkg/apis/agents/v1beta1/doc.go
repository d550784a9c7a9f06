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

// Package v1beta1 is the storage version of the agents.x-k8s.io API group:
// the Sandbox, one stateful, singleton, isolated workload with a stable
// identity, plus the building blocks the extensions group reuses.
//
// +k8s:deepcopy-gen=package
// +groupName=agents.x-k8s.io
package v1beta1
