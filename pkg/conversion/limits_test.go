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

package conversion

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(h http.Handler, body []byte, contentLength int64) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/convert", bytes.NewReader(body))
	r.ContentLength = contentLength
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLimitedHandler(t *testing.T) {
	l := DefaultLimits()
	l.MaxInFlight = 2
	l.MaxInFlightBytes = l.MaxRequestBytes
	h := newLimitedHandler(l)
	review := reviewOf(t, "apiextensions.k8s.io/v1", "agents.x-k8s.io/v1beta1", alphaSandbox)

	if w := post(h, review, int64(len(review))); w.Code != http.StatusOK {
		t.Fatalf("a small review: %d %s", w.Code, w.Body)
	}
	if w := post(h, nil, l.MaxRequestBytes+1); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a review declaring more than the cap: %d, want 413 before reading", w.Code)
	}
	if w := post(h, bytes.Repeat([]byte(" "), int(l.MaxRequestBytes)+1), -1); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a review of unknown length above the cap: %d, want 413", w.Code)
	}

	// The small pool full: small reviews are shed with Retry-After, large
	// ones still get in, and the other way round.
	var held []func()
	for range l.MaxInFlight {
		release, ok := h.admit(int64(len(review)))
		if !ok {
			t.Fatal("the small pool refused before it was full")
		}
		held = append(held, release)
	}
	w := post(h, review, int64(len(review)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("a small review with the small pool full: %d Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	bigRelease, ok := h.admit(l.MaxRequestBytes)
	if !ok {
		t.Fatal("a full small pool refused a large review")
	}
	for _, release := range held {
		release()
	}
	if w := post(h, review, int64(len(review))); w.Code != http.StatusOK {
		t.Errorf("a small review with the large pool full: %d, want 200", w.Code)
	}
	if _, ok := h.admit(smallReviewBytes + 1); ok {
		t.Error("the large pool admitted beyond MaxInFlightBytes")
	}
	if _, ok := h.admit(-1); ok {
		t.Error("a review of unknown length was admitted without room for the cap")
	}
	bigRelease()
	if release, ok := h.admit(-1); !ok {
		t.Error("the large pool did not get its bytes back")
	} else {
		release()
	}

	if w := post(h, []byte("{"), 1); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "malformed") {
		t.Errorf("a malformed review: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest(http.MethodGet, "/convert", http.NoBody)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	if err := (Limits{}).Validate(); err == nil {
		t.Error("zero limits validated")
	}
	bad := DefaultLimits()
	bad.MaxInFlightBytes = bad.MaxRequestBytes - 1
	if err := bad.Validate(); err == nil {
		t.Error("in-flight bytes that cannot hold one maximal review validated")
	}
}
