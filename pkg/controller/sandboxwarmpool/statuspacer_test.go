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

package sandboxwarmpool

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	extv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

func TestStatusPacer(t *testing.T) {
	p := newStatusPacer(time.Second)
	t0 := time.Unix(1000, 0)
	pool := &extv1beta1.SandboxWarmPool{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	pool.Status = extv1beta1.SandboxWarmPoolStatus{Replicas: 5, ReadyReplicas: 5, ObservedGeneration: 2}
	progress := extv1beta1.SandboxWarmPoolStatus{Replicas: 4, ReadyReplicas: 4, ObservedGeneration: 2}

	if w := p.wait("p", pool, progress, 5, t0); w != 0 {
		t.Fatalf("first write held %s", w)
	}
	p.wrote("p", t0)
	pool.Status = progress
	next := extv1beta1.SandboxWarmPoolStatus{Replicas: 5, ReadyReplicas: 4, ObservedGeneration: 2}
	if w := p.wait("p", pool, next, 5, t0.Add(300*time.Millisecond)); w != 700*time.Millisecond {
		t.Errorf("progress 300ms after a write held %s, want 700ms", w)
	}
	if w := p.wait("p", pool, next, 5, t0.Add(time.Second)); w != 0 {
		t.Errorf("progress after the interval held %s", w)
	}
	settled := extv1beta1.SandboxWarmPoolStatus{Replicas: 5, ReadyReplicas: 5, ObservedGeneration: 2}
	if w := p.wait("p", pool, settled, 5, t0.Add(100*time.Millisecond)); w != 0 {
		t.Errorf("a pool reaching its target held %s", w)
	}
	scaled := extv1beta1.SandboxWarmPoolStatus{Replicas: 4, ReadyReplicas: 4, ObservedGeneration: 3}
	if w := p.wait("p", pool, scaled, 8, t0.Add(100*time.Millisecond)); w != 0 {
		t.Errorf("a new generation held %s", w)
	}
	if w := p.wait("p", pool, progress, 5, t0.Add(100*time.Millisecond)); w != 0 {
		t.Errorf("an unchanged status held %s", w)
	}
}
