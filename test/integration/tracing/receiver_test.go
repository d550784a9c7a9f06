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

package tracing

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// span is one exported span, flattened for assertions.
type span struct {
	Service, Name             string
	TraceID, SpanID, Parent   string
	Kind                      string
	Attrs                     map[string]string
	Events                    []event
	StatusCode, StatusMessage string
}

type event struct {
	Name  string
	Attrs map[string]string
}

func (s span) String() string {
	return fmt.Sprintf("%s %s trace=%s span=%s parent=%s %v", s.Service, s.Name, s.TraceID[:8], s.SpanID, s.Parent, s.Attrs)
}

func (s span) hasEvent(name string) bool {
	for _, e := range s.Events {
		if e.Name == name {
			return true
		}
	}
	return false
}

// receiver is an OTLP/HTTP traces endpoint on loopback: it decodes each
// ExportTraceServiceRequest (protobuf) and keeps the spans.
type receiver struct {
	URL      string
	mu       sync.Mutex
	spans    []span
	requests int
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
			http.NotFound(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			// An exporter speaking anything but OTLP/HTTP protobuf fails here.
			t.Errorf("receiver: not an ExportTraceServiceRequest (Content-Type %q): %v", req.Header.Get("Content-Type"), err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *receiver) add(msg *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out := span{Service: service, Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()),
					SpanID: hex.EncodeToString(s.GetSpanId()), Parent: hex.EncodeToString(s.GetParentSpanId()),
					Kind: s.GetKind().String(), Attrs: map[string]string{},
					StatusCode: s.GetStatus().GetCode().String(), StatusMessage: s.GetStatus().GetMessage()}
				for _, kv := range s.GetAttributes() {
					out.Attrs[kv.GetKey()] = anyValue(kv.GetValue())
				}
				for _, e := range s.GetEvents() {
					ev := event{Name: e.GetName(), Attrs: map[string]string{}}
					for _, kv := range e.GetAttributes() {
						ev.Attrs[kv.GetKey()] = anyValue(kv.GetValue())
					}
					out.Events = append(out.Events, ev)
				}
				r.spans = append(r.spans, out)
			}
		}
	}
}

// anyValue is a scalar attribute's value as text ("200", "true").
func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return fmt.Sprint(v.GetValue())
}

// find returns the spans received so far that match.
func (r *receiver) find(match func(span) bool) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for i := range r.spans {
		if match(r.spans[i]) {
			out = append(out, r.spans[i])
		}
	}
	return out
}

// dump lists what was received, for a failure message.
func (r *receiver) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := make([]string, 0, len(r.spans))
	for i := range r.spans {
		lines = append(lines, r.spans[i].String())
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d requests, %d spans:\n%s", r.requests, len(r.spans), strings.Join(lines, "\n"))
}
