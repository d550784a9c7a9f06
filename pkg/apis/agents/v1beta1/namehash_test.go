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
	"math/rand/v2"
	"testing"
)

func TestNameHash(t *testing.T) {
	// Test vectors from the compatibility spec: every label value derived
	// from a name must match the reference bit for bit.
	tests := map[string]string{
		"":                        "811c9dc5",
		"a":                       "e40c292c",
		"my-sandbox":              "374de8f5",
		"test-pool":               "59733166",
		"python-sandbox-template": "d274c066",
	}
	for in, want := range tests {
		if got := NameHash(in); got != want {
			t.Errorf("NameHash(%q) = %q, want %q", in, got, want)
		}
	}
}

// The written-out hash agrees with hash/fnv printed as %08x on any bytes,
// not only on the vectors above.
func TestNameHashIsFNV32a(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		h := fnv.New32a()
		_, _ = h.Write(b)
		if got, want := NameHash(string(b)), fmt.Sprintf("%08x", h.Sum32()); got != want {
			t.Fatalf("NameHash(%q) = %q, hash/fnv gives %q", b, got, want)
		}
	}
}

func BenchmarkNameHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NameHash("python-sandbox-template")
	}
}

func TestSandboxSelector(t *testing.T) {
	if got, want := SandboxSelector("my-sandbox"), "agents.x-k8s.io/sandbox-name-hash=374de8f5"; got != want {
		t.Errorf("SandboxSelector = %q, want %q", got, want)
	}
}
