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

package warmenv

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeaderRoundTrip(t *testing.T) {
	env := []Var{{Name: "TOKEN", Value: "a\nb\r\x01 é"}, {Name: "EMPTY", Value: ""}}
	h := EncodeHeader(env)
	if strings.ContainsAny(h, "\r\n") {
		t.Fatalf("header %q holds a line break", h)
	}
	got, err := DecodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(env, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
}

func TestDecodeHeaderRefuses(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for name, tc := range map[string]struct {
		header string
		want   error
	}{
		"not base64":       {"TOKEN=evil", ErrMalformed},
		"not JSON":         {b64("TOKEN=evil"), ErrMalformed},
		"an object":        {b64(`{"name":"A","value":"b"}`), ErrMalformed},
		"empty name":       {b64(`[{"name":"","value":"b"}]`), ErrBadName},
		"= in name":        {b64(`[{"name":"A=B","value":"b"}]`), ErrBadName},
		"NUL in value":     {b64(`[{"name":"A","value":"b\u0000"}]`), ErrBadValue},
		"over the maximum": {strings.Repeat("A", MaxHeaderBytes+4), ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeHeader(tc.header); !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalParse(t *testing.T) {
	s := Spec{Port: 8888, Env: []Var{{Name: "A", Value: "1"}}}
	a, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if a != `{"port":8888,"env":[{"name":"A","value":"1"}]}` {
		t.Errorf("annotation %s", a)
	}
	got, err := Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if _, err := Marshal(Spec{Port: 0}); !errors.Is(err, ErrBadPort) {
		t.Errorf("port 0: err %v", err)
	}
	big := Spec{Port: 1, Env: []Var{{Name: "A", Value: strings.Repeat("x", MaxAnnotationBytes)}}}
	if _, err := Marshal(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big: err %v", err)
	}
	if _, err := Parse(`{"port":70000,"env":[]}`); !errors.Is(err, ErrBadPort) {
		t.Errorf("port 70000: err %v", err)
	}
	// The largest annotation still fits the header bound.
	fit := Spec{Port: 1, Env: []Var{{Name: "A"}}}
	base, _ := Marshal(fit)
	fit.Env[0].Value = strings.Repeat("x", MaxAnnotationBytes-len(base))
	a, err = Marshal(fit)
	if err != nil || len(a) != MaxAnnotationBytes {
		t.Fatalf("len %d err %v", len(a), err)
	}
	if _, err := DecodeHeader(EncodeHeader(fit.Env)); err != nil {
		t.Errorf("the largest env's header is refused: %v", err)
	}
}

func TestOverlay(t *testing.T) {
	base := []string{"PATH=/bin", "TASK=template", "HOME=/root"}
	got := Overlay(base, []Var{{Name: "TASK", Value: "1"}, {Name: "TOKEN", Value: "a"}, {Name: "TOKEN", Value: "b"}})
	want := []string{"PATH=/bin", "HOME=/root", "TASK=1", "TOKEN=b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/bin", "TASK=template", "HOME=/root"}, base); diff != "" {
		t.Errorf("base modified (-want,+got):\n%s", diff)
	}
}
