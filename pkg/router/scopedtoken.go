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
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Scoped-token wire format (§1.6): v1.<payload>.<signature>, where payload
// is base64url(JSON {"ns","name","exp"}, plus an optional "uid") and
// signature is
// base64url(HMAC-SHA256(secret, scopedTokenDomain + payload)), both without
// padding. The signature covers the encoded payload segment exactly as it
// appears in the token, so verification never re-encodes anything.
const (
	scopedTokenVersion = "v1"
	scopedTokenDomain  = "agent-sandbox/scoped-token/v1."
	// MinScopedTokenSecretBytes is the shortest secret accepted.
	MinScopedTokenSecretBytes = 32
)

var b64 = base64.RawURLEncoding.Strict()

// ScopedTokenClaims are the contents of a scoped token.
type ScopedTokenClaims struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
	// Expiry is in Unix seconds and exclusive: the token is invalid from
	// that second on.
	Expiry int64 `json:"exp"`
	// UID, when set, is the UID of the Sandbox the token was minted for:
	// a Sandbox deleted and recreated under the same name does not accept
	// it. Routers that predate the claim refuse such tokens (unknown
	// field), so adding it never widens access.
	UID types.UID `json:"uid,omitempty"`
}

// maxScopedTokenUIDBytes bounds the uid claim; Kubernetes UIDs are 36.
const maxScopedTokenUIDBytes = 128

func checkSecret(secret []byte) error {
	if len(secret) < MinScopedTokenSecretBytes {
		return fmt.Errorf("scoped-token secret must be at least %d bytes, got %d", MinScopedTokenSecretBytes, len(secret))
	}
	return nil
}

func signScoped(secret []byte, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(scopedTokenDomain))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// MintScopedToken returns a token that lets its bearer reach exactly the
// sandbox namespace/name until now+ttl through a router in scoped-token
// mode. A ttl under one second is raised to one second. It is for
// whatever creates sandboxes; the router only verifies.
func MintScopedToken(secret []byte, namespace, name string, ttl time.Duration, now time.Time) (string, error) {
	return mintScopedToken(secret, ScopedTokenClaims{Namespace: namespace, Name: name}, ttl, now)
}

// MintScopedTokenForSandbox is MintScopedToken bound to one incarnation of
// the sandbox: the token carries uid (the Sandbox's metadata.uid) and stops
// working when the Sandbox is deleted, even if one of the same name is
// created again. Prefer it whenever the UID is at hand.
func MintScopedTokenForSandbox(secret []byte, namespace, name string, uid types.UID, ttl time.Duration, now time.Time) (string, error) {
	if uid == "" || len(uid) > maxScopedTokenUIDBytes {
		return "", fmt.Errorf("scoped token: uid must be 1 to %d bytes, got %d", maxScopedTokenUIDBytes, len(uid))
	}
	return mintScopedToken(secret, ScopedTokenClaims{Namespace: namespace, Name: name, UID: uid}, ttl, now)
}

func mintScopedToken(secret []byte, c ScopedTokenClaims, ttl time.Duration, now time.Time) (string, error) {
	if err := checkSecret(secret); err != nil {
		return "", err
	}
	if !isDNSLabel(c.Namespace) || !isDNSLabel(c.Name) {
		return "", fmt.Errorf("scoped token: namespace %q and name %q must be DNS-1123 labels", c.Namespace, c.Name)
	}
	c.Expiry = now.Add(max(ttl, time.Second)).Unix()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("scoped token: encoding claims: %w", err)
	}
	p := b64.EncodeToString(payload)
	return scopedTokenVersion + "." + p + "." + b64.EncodeToString(signScoped(secret, p)), nil
}

// ScopedTokenVerifier checks scoped tokens against one secret.
type ScopedTokenVerifier struct {
	secret []byte
}

// NewScopedTokenVerifier returns a verifier for secret (at least 32 bytes).
func NewScopedTokenVerifier(secret []byte) (*ScopedTokenVerifier, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	return &ScopedTokenVerifier{secret: bytes.Clone(secret)}, nil
}

// Verify returns the claims of a well-formed, correctly signed token that
// has not expired at now. Every failure wraps ErrUnauthenticated.
func (v *ScopedTokenVerifier) Verify(token string, now time.Time) (ScopedTokenClaims, error) {
	fail := func(why string) (ScopedTokenClaims, error) {
		return ScopedTokenClaims{}, fmt.Errorf("%w: scoped token %s", ErrUnauthenticated, why)
	}
	version, rest, ok := strings.Cut(token, ".")
	if !ok || version != scopedTokenVersion {
		return fail("has an unknown format")
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || payload == "" || strings.Contains(sig, ".") {
		return fail("is malformed")
	}
	gotSig, err := b64.DecodeString(sig)
	if err != nil {
		return fail("signature is malformed")
	}
	// The signature is checked before the payload is parsed, so nothing
	// attacker-controlled reaches the JSON decoder unauthenticated.
	if !hmac.Equal(gotSig, signScoped(v.secret, payload)) {
		return fail("signature is invalid")
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return fail("payload is malformed")
	}
	var c ScopedTokenClaims
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return fail("payload is malformed")
	}
	if c.Namespace == "" || c.Name == "" || c.Expiry <= 0 {
		return fail("claims are incomplete")
	}
	if len(c.UID) > maxScopedTokenUIDBytes {
		return fail("uid claim is too long")
	}
	if now.Unix() >= c.Expiry {
		return fail("has expired")
	}
	return c, nil
}

// LoadScopedTokenSecret reads the secret file; surrounding whitespace (a
// trailing newline from `kubectl create secret --from-file`) is trimmed.
func LoadScopedTokenSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scoped-token secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if err := checkSecret(b); err != nil {
		return nil, err
	}
	return b, nil
}

// ScopedTokenOption configures NewScopedTokenAuthorizer.
type ScopedTokenOption func(*scopedTokenAuthorizer)

// RequireScopedTokenUID refuses (401) tokens without the uid claim, so
// only tokens bound to one incarnation of a Sandbox are accepted.
func RequireScopedTokenUID() ScopedTokenOption {
	return func(a *scopedTokenAuthorizer) { a.requireUID = true }
}

type scopedTokenAuthorizer struct {
	verifier   *ScopedTokenVerifier
	now        func() time.Time
	requireUID bool
}

// NewScopedTokenAuthorizer admits requests whose bearer token is a valid
// scoped token for exactly the requested namespace and sandbox and, when
// the token carries a uid claim, whose request resolves to the Sandbox of
// that UID (the router checks after resolution: it is a
// ConstrainedAuthorizer). Requests carrying X-Sandbox-Pod-IP or
// X-Sandbox-UID are forbidden: those headers could steer the dial away
// from the identity the token names. now nil means time.Now.
func NewScopedTokenAuthorizer(secret []byte, now func() time.Time, opts ...ScopedTokenOption) (Authorizer, error) {
	v, err := NewScopedTokenVerifier(secret)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	a := &scopedTokenAuthorizer{verifier: v, now: now}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// AuthorizeConstrained verifies the token and returns the UID it is bound
// to, if any, for the router to compare with the resolved Sandbox.
func (a *scopedTokenAuthorizer) AuthorizeConstrained(_ context.Context, r *http.Request, namespace, name string) (Constraint, error) {
	token, ok := BearerToken(r)
	if !ok {
		return Constraint{}, fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	c, err := a.verifier.Verify(token, a.now())
	if err != nil {
		return Constraint{}, err
	}
	if a.requireUID && c.UID == "" {
		return Constraint{}, fmt.Errorf("%w: scoped token has no uid claim, which this router requires", ErrUnauthenticated)
	}
	if r.Header.Get(HeaderSandboxPodIP) != "" || r.Header.Get(HeaderSandboxUID) != "" {
		return Constraint{}, fmt.Errorf("%w: %s and %s are not accepted with scoped tokens", ErrForbidden, HeaderSandboxPodIP, HeaderSandboxUID)
	}
	if c.Namespace != namespace || c.Name != name {
		return Constraint{}, fmt.Errorf("%w: token is scoped to %s/%s", ErrForbidden, c.Namespace, c.Name)
	}
	return Constraint{SandboxUID: c.UID}, nil
}

// Authorize is for callers that cannot enforce a Constraint: a token bound
// to a UID is refused there rather than accepted for any incarnation.
func (a *scopedTokenAuthorizer) Authorize(ctx context.Context, r *http.Request, namespace, name string) error {
	c, err := a.AuthorizeConstrained(ctx, r, namespace, name)
	if err == nil && c.SandboxUID != "" {
		return fmt.Errorf("%w: the token is bound to sandbox UID %s, which this caller cannot check", ErrForbidden, c.SandboxUID)
	}
	return err
}
