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

package controller

import "testing"

func TestWrittenStatus(t *testing.T) {
	w := NewWrittenStatus()
	if w.AlreadyWritten("u", "1", "ready") {
		t.Fatal("nothing written yet")
	}
	w.Wrote("u", "1", "ready")
	if !w.AlreadyWritten("u", "1", "ready") {
		t.Error("the same status from the same cached version is already written")
	}
	if w.AlreadyWritten("u", "1", "not ready") {
		t.Error("a different status is not")
	}
	// The cache caught up: the record goes, the cache is the truth.
	if w.AlreadyWritten("u", "2", "ready") {
		t.Error("after the cache moved on, nothing is assumed")
	}
	if w.AlreadyWritten("u", "1", "ready") {
		t.Error("the record should be gone once the cache moved on")
	}
	w.Wrote("v", "5", "x")
	if n := w.Len(); n != 1 {
		t.Errorf("Len %d, want 1 (u's record dropped, v's kept)", n)
	}
	w.Forget("v")
	if w.AlreadyWritten("v", "5", "x") {
		t.Error("forgotten")
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len %d after Forget, want 0", n)
	}
}
