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

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadAllowedLabelDomains(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "allowed-label-domains")
	if err := os.WriteFile(file, []byte("Example.COM, teams.example.org\r\nsandbox.users.io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readAllowedLabelDomains(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"example.com", "teams.example.org", "sandbox.users.io"}, got); diff != "" {
		t.Errorf("domains (-want,+got):\n%s", diff)
	}

	if got, err := readAllowedLabelDomains(filepath.Join(dir, "missing")); err != nil || got != nil {
		t.Errorf("missing file: %v, %v; want the default (nil) and no error", got, err)
	}
	// A file that exists but cannot be read (here a directory) stops the
	// process instead of silently falling back to the default.
	if got, err := readAllowedLabelDomains(dir); err == nil {
		t.Errorf("unreadable file: %v and no error; want an error", got)
	}
}
