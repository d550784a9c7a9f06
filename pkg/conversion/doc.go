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

// Package conversion converts the four kinds between v1alpha1 (the spoke,
// served and deprecated) and v1beta1 (the hub, stored), field by field as
// the API spec maps them. Pure functions: no API calls.
//
// Spoke to hub stores the whole v1alpha1 object (minus its own state
// annotation and managedFields) in a per-kind state annotation on the hub,
// so a v1alpha1 client that reads back what it wrote gets it unchanged even
// where the versions differ (Sandbox replicas, a claim's template and warm
// pool policy). Hub to spoke always removes that annotation.
package conversion
