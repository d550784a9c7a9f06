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

// Package router is the sandbox router: an HTTP reverse proxy that picks its
// upstream, a sandbox Pod, from the X-Sandbox-* request headers.
//
// Targets are resolved only from an in-process Pod informer cache (no API
// call per request); an optional DNS fallback reaches Service-backed
// sandboxes. Authorization is pluggable (allow-all, TokenReview, scoped
// capability tokens, SubjectAccessReview on sandboxes/proxy). The wire
// contract is described in docs/router.md.
package router
