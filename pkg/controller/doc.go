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

// Package controller holds the machinery more than one controller needs:
// the sync loop and queues, expectations, slow start, ownership checks by
// group and kind, merge-patch diffs, UID sweeps, cache transforms and
// indexes. It holds no domain rules (those the pools and claims share are
// in pkg/sandboxpolicy) and imports no extensions API, so the core Sandbox
// controller can use it. Controller packages never import each other.
package controller
