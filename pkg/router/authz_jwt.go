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

package router

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// maxJWTBytes bounds the tokens checkJWTShape decodes. ServiceAccount
// tokens are about 1 KiB and OIDC ID tokens rarely reach 8.
const maxJWTBytes = 32 << 10

// checkJWTShape is the cheap test a token passes before it may cost a
// TokenReview: a JWS compact serialization (three unpadded base64url
// segments, the first two JSON objects) whose exp, when present, is a
// number after now. It returns that expiry (zero when absent) so a grant is
// never cached past it. It proves nothing about the signature; it only
// keeps random strings and expired tokens away from the API server.
func checkJWTShape(token string, now time.Time) (time.Time, error) {
	fail := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: bearer token %s", ErrUnauthenticated, why)
	}
	if len(token) > maxJWTBytes {
		return fail("is too long for a JWT")
	}
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || header == "" || payload == "" || sig == "" || strings.Contains(sig, ".") {
		return fail("is not a JWT (want three segments)")
	}
	if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
		return fail("signature is not base64url")
	}
	if !isJSONObject(header) {
		return fail("header is not a base64url JSON object")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return fail("payload is not base64url")
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil || claims == nil {
		return fail("payload is not a JSON object")
	}
	rawExp, ok := claims["exp"]
	if !ok {
		return time.Time{}, nil
	}
	var exp float64
	if err := json.Unmarshal(rawExp, &exp); err != nil {
		return fail("exp is not a number")
	}
	if exp <= float64(now.Unix()) {
		return fail("has expired")
	}
	if exp >= 1<<40 { // beyond year 36000: no expiry worth caching against
		return time.Time{}, nil
	}
	return time.Unix(int64(exp), 0), nil
}

func isJSONObject(segment string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return false
	}
	raw = bytes.TrimSpace(raw)
	return len(raw) > 1 && raw[0] == '{' && json.Valid(raw)
}
