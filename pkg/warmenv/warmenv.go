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

// Package warmenv is the wire format of a warm claim's environment
// (docs/design/warm-env.md): the Sandbox annotation the claim controller
// writes in its takeover patch, and the X-Sandbox-Env header the router
// (or the SDK in direct mode) derives from it and the runtime decodes.
// It has no dependency beyond the standard library, so the runtime image
// stays small.
//
// No error of this package quotes a name or a value: they end up in
// conditions, logs and HTTP answers, and a value is often a secret.
package warmenv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Header carries the variables from the router to the runtime: base64
// (standard alphabet, padded) of the JSON array of Var. Base64, because a
// value may hold bytes a header value may not (newlines, controls).
const Header = "X-Sandbox-Env"

// MaxAnnotationBytes bounds the annotation's JSON. A claim whose env makes
// a larger one goes cold (EnvTooLarge). It bounds the router's memory per
// routable Sandbox and the header the runtime accepts.
const MaxAnnotationBytes = 8 << 10

// MaxHeaderBytes is the longest header an annotation within
// MaxAnnotationBytes can give; the runtime refuses longer ones unread.
var MaxHeaderBytes = base64.StdEncoding.EncodedLen(MaxAnnotationBytes)

// Var is one variable.
type Var struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Spec is the annotation's value: the runtime port the router sets the
// header on (the template's warm-env-port; the router watches no
// templates) and the variables, in the order the claim gave them.
type Spec struct {
	Port int32 `json:"port"`
	Env  []Var `json:"env"`
}

// Errors. Their text names no variable.
var (
	ErrTooLarge  = errors.New("the environment is larger than 8 KiB as JSON")
	ErrBadName   = errors.New("an environment variable name is empty or contains '=' or a NUL byte")
	ErrBadValue  = errors.New("an environment variable value contains a NUL byte")
	ErrBadPort   = errors.New("the runtime port is not in 1-65535")
	ErrMalformed = errors.New("malformed environment")
)

// Validate checks what exec would refuse or misread: a name that is empty
// or holds '=' or NUL, a value that holds NUL.
func Validate(env []Var) error {
	for _, v := range env {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") {
			return ErrBadName
		}
		if strings.ContainsRune(v.Value, 0) {
			return ErrBadValue
		}
	}
	return nil
}

// Marshal is the annotation value of s, refused when over
// MaxAnnotationBytes or invalid.
func Marshal(s Spec) (string, error) {
	if s.Port < 1 || s.Port > 65535 {
		return "", ErrBadPort
	}
	if err := Validate(s.Env); err != nil {
		return "", err
	}
	if s.Env == nil {
		s.Env = []Var{}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	if len(b) > MaxAnnotationBytes {
		return "", ErrTooLarge
	}
	return string(b), nil
}

// Parse reads an annotation value, with the checks of Marshal.
func Parse(annotation string) (Spec, error) {
	var s Spec
	if len(annotation) > MaxAnnotationBytes {
		return s, ErrTooLarge
	}
	if err := json.Unmarshal([]byte(annotation), &s); err != nil {
		return Spec{}, ErrMalformed
	}
	if s.Port < 1 || s.Port > 65535 {
		return Spec{}, ErrBadPort
	}
	if err := Validate(s.Env); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// EncodeHeader is the X-Sandbox-Env value carrying env.
func EncodeHeader(env []Var) string {
	if env == nil {
		env = []Var{}
	}
	b, _ := json.Marshal(env) // strings only: cannot fail
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeHeader reads an X-Sandbox-Env value.
func DecodeHeader(h string) ([]Var, error) {
	if len(h) > MaxHeaderBytes {
		return nil, ErrTooLarge
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return nil, ErrMalformed
	}
	var env []Var
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, ErrMalformed
	}
	if err := Validate(env); err != nil {
		return nil, err
	}
	return env, nil
}

// Overlay returns base (os.Environ form, NAME=value) with env's variables
// replacing same-named entries or appended, so a name env sets wins, as a
// pod-spec variable wins over the image's on the cold path. The last of
// duplicate names in env wins. base is not modified.
func Overlay(base []string, env []Var) []string {
	if len(env) == 0 {
		return base
	}
	set := make(map[string]string, len(env))
	for _, v := range env {
		set[v.Name] = v.Value
	}
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; ok {
			continue
		}
		out = append(out, kv)
	}
	// Each name once, where it first appears, with its last value.
	added := make(map[string]bool, len(env))
	for _, v := range env {
		if added[v.Name] {
			continue
		}
		added[v.Name] = true
		out = append(out, v.Name+"="+set[v.Name])
	}
	return out
}
