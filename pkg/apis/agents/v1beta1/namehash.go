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

package v1beta1

import (
	"fmt"
	"hash/fnv"
)

// NameHash returns the 32-bit FNV-1a hash of s as exactly eight lowercase
// hex digits. Label values are such hashes rather than raw names, so long
// object names never hit the 63-character label value limit.
func NameHash(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s)) // hash.Hash.Write never fails
	return fmt.Sprintf("%08x", h.Sum32())
}

// SandboxSelector returns the label selector that matches the Pod of the
// named Sandbox, the value of status.selector.
func SandboxSelector(sandboxName string) string {
	return SandboxNameHashLabel + "=" + NameHash(sandboxName)
}
