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

// NameHash returns the 32-bit FNV-1a hash of s as exactly eight lowercase
// hex digits. Label values are such hashes rather than raw names, so long
// object names never hit the 63-character label value limit. Written out
// (hash/fnv with fmt.Sprintf("%08x") gives the same digits) because the
// controllers compute it for every member a pool or claim looks at: ~7×
// faster, and at most one allocation (the result) instead of two.
func NameHash(s string) string {
	const (
		offset32 = 2166136261
		prime32  = 16777619
		digits   = "0123456789abcdef"
	)
	h := uint32(offset32)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime32
	}
	var b [8]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[h&0xf]
		h >>= 4
	}
	return string(b[:])
}

// SandboxSelector returns the label selector that matches the Pod of the
// named Sandbox, the value of status.selector.
func SandboxSelector(sandboxName string) string {
	return SandboxNameHashLabel + "=" + NameHash(sandboxName)
}
