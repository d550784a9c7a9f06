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

// Package sandboxpolicy holds the rules for the Sandboxes that warm pools
// and claims build from a SandboxTemplate, shared by both controllers: the
// secure defaults put on their pod spec, the template hashes recorded on
// them, when one still matches its template (staleness), and which pool
// members a pool or a claim may trust. It is domain policy, kept apart
// from the controller machinery of pkg/controller; it imports the
// extensions API, which the core Sandbox controller must not.
package sandboxpolicy
