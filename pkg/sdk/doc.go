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

// Package sdk is the Go client for agent sandboxes.
//
// A Client claims a sandbox from a SandboxWarmPool by creating a
// SandboxClaim, waits until the bound Sandbox is Ready, and returns a
// *Sandbox handle. The handle talks to the in-sandbox runtime over HTTP,
// either through the sandbox router (WithRouterURL) or straight to the pod
// IP (WithDirectPodIP, for callers inside the cluster network), and deletes
// the claim on Close.
//
// Every call takes a context. Errors carry the prefix
// "sandbox[<namespace>/<claim>]" and wrap the sentinels declared in this
// package (errors.Is) or an *HTTPError (errors.As). Only idempotent
// operations (Read, List, Exists) are retried by default: a command or an
// upload must never run twice because a response was lost.
package sdk
