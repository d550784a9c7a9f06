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

// Package runtime is the in-sandbox runtime: an HTTP server that runs
// commands and reads and writes files inside one base directory, serving
// the legacy python-runtime API (spec §2.1) plus our additive extensions
// (per-command timeouts and streamed execution). See docs/runtime.md.
package runtime
