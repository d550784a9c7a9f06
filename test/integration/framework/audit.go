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

package framework

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// WithAuditLog makes the API server keep an audit log of every request,
// which AuditEvents reads.
func WithAuditLog() Option { return func(o *options) { o.auditLog = true } }

// AuditEvent is what a test reads of one API server audit event: who
// sent which request (the fields of audit.k8s.io/v1 Event it needs).
type AuditEvent struct {
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	ObjectRef struct {
		APIGroup    string `json:"apiGroup"`
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// AuditEvents returns the requests the API server has logged so far. The
// API server writes an event once the response is complete, so a request
// just answered may not be there yet: poll for what you expect.
func AuditEvents(t testing.TB) []AuditEvent {
	t.Helper()
	if controlPlane == nil {
		t.Fatal("AuditEvents needs a control plane started by framework.Main")
	}
	b, err := os.ReadFile(controlPlane.AuditLogPath())
	if err != nil {
		t.Fatalf("reading the audit log (is the package run with framework.WithAuditLog?): %v", err)
	}
	// The last line may be one the API server is still writing.
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var events []AuditEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}
