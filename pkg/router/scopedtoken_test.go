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
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestScopedTokenRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, err := MintScopedToken(testSecret, "team-a", "sb-1", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "v1" || strings.ContainsAny(tok, "=+/") {
		t.Fatalf("token %q is not v1.<b64url>.<b64url>", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ns":"team-a","name":"sb-1","exp":1700000060}`; string(raw) != want {
		t.Errorf("payload = %s, want %s", raw, want)
	}
	v, err := NewScopedTokenVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c != (ScopedTokenClaims{Namespace: "team-a", Name: "sb-1", Expiry: 1_700_000_060}) {
		t.Errorf("claims = %+v", c)
	}
	// exp is exclusive.
	if _, err := v.Verify(tok, time.Unix(1_700_000_059, 999_999_999)); err != nil {
		t.Errorf("valid in its last second: %v", err)
	}
	if _, err := v.Verify(tok, time.Unix(1_700_000_060, 0)); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Verify at exp = %v, want unauthenticated", err)
	}
	// Minimum TTL of one second.
	short, _ := MintScopedToken(testSecret, "ns", "a", time.Millisecond, now)
	if c, err := v.Verify(short, now); err != nil || c.Expiry != now.Unix()+1 {
		t.Errorf("short TTL: %+v, %v", c, err)
	}
}

func TestScopedTokenRejects(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v, _ := NewScopedTokenVerifier(testSecret)
	good, _ := MintScopedToken(testSecret, "ns", "a", time.Minute, now)
	parts := strings.Split(good, ".")
	other, _ := MintScopedToken([]byte(strings.Repeat("x", 32)), "ns", "a", time.Minute, now)
	forged := func(payload string) string {
		p := base64.RawURLEncoding.EncodeToString([]byte(payload))
		return "v1." + p + "." + base64.RawURLEncoding.EncodeToString(signScoped(testSecret, p))
	}
	cases := map[string]string{
		"empty":              "",
		"wrong version":      "v2." + parts[1] + "." + parts[2],
		"two parts":          "v1." + parts[1],
		"four parts":         good + ".x",
		"other secret":       other,
		"payload swapped":    "v1." + base64.RawURLEncoding.EncodeToString([]byte(`{"ns":"ns","name":"b","exp":1700000060}`)) + "." + parts[2],
		"padded signature":   good + "=",
		"std base64 sig":     "v1." + parts[1] + "." + base64.StdEncoding.EncodeToString([]byte("x")),
		"signed garbage":     forged("not json"),
		"signed extra field": forged(`{"ns":"ns","name":"a","exp":1700000060,"admin":true}`),
		"signed no name":     forged(`{"ns":"ns","exp":1700000060}`),
		"signed no exp":      forged(`{"ns":"ns","name":"a"}`),
		"signed trailing":    forged(`{"ns":"ns","name":"a","exp":1700000060}{}`),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if c, err := v.Verify(tok, now); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Verify(%q) = %+v, %v; want unauthenticated", tok, c, err)
			}
		})
	}
}

func TestScopedTokenSecrets(t *testing.T) {
	if _, err := MintScopedToken([]byte("short"), "ns", "a", time.Minute, time.Now()); err == nil {
		t.Error("Mint accepted a short secret")
	}
	if _, err := NewScopedTokenVerifier(make([]byte, 31)); err == nil {
		t.Error("verifier accepted a 31-byte secret")
	}
	if _, err := MintScopedToken(testSecret, "NS", "a", time.Minute, time.Now()); err == nil {
		t.Error("Mint accepted an invalid namespace")
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, append(append([]byte("  "), testSecret...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadScopedTokenSecret(good)
	if err != nil || !bytes.Equal(got, testSecret) {
		t.Errorf("LoadScopedTokenSecret = %q, %v", got, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte(strings.Repeat(" ", 40)+"short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadScopedTokenSecret(bad); err == nil {
		t.Error("LoadScopedTokenSecret accepted a secret shorter than 32 bytes after trimming")
	}
	if _, err := LoadScopedTokenSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadScopedTokenSecret accepted a missing file")
	}
}

// The claims struct keeps the wire field order ns, name, exp.
func TestScopedTokenClaimsJSON(t *testing.T) {
	b, _ := json.Marshal(ScopedTokenClaims{Namespace: "n", Name: "x", Expiry: 5})
	if string(b) != `{"ns":"n","name":"x","exp":5}` {
		t.Errorf("claims JSON = %s", b)
	}
}

// FuzzScopedTokenVerify: Verify never panics on hostile input, and the only
// string it accepts is the token that was minted: no other spelling of the
// same payload or signature (padding, alternative base64 alphabets, case,
// trailing bits, extra segments) passes.
func FuzzScopedTokenVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	valid, err := MintScopedToken(testSecret, "team-a", "sb-1", time.Minute, now)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		valid, valid + "=", valid + ".", "v1..", "v1.e30.", "v2" + valid[2:], strings.ToUpper(valid),
		"v1.eyJucyI6InRlYW0tYSIsIm5hbWUiOiJzYi0xIiwiZXhwIjoxNzAwMDAwMDYwfQ.AAAA", "",
	} {
		f.Add(seed)
	}
	v, err := NewScopedTokenVerifier(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, now)
		if err == nil && tok != valid {
			t.Fatalf("Verify accepted %q (claims %+v), which is not the minted token", tok, c)
		}
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("Verify(%q) = %v, want ErrUnauthenticated", tok, err)
		}
	})
}

func TestScopedTokenUIDClaim(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, err := MintScopedTokenForSandbox(testSecret, "team-a", "sb-1", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if want := `{"ns":"team-a","name":"sb-1","exp":1700000060,"uid":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}`; string(raw) != want {
		t.Errorf("payload = %s, want %s", raw, want)
	}
	v, _ := NewScopedTokenVerifier(testSecret)
	c, err := v.Verify(tok, now)
	if err != nil || c.UID != "1b4e28ba-2fa1-11d2-883f-0016d3cca427" {
		t.Errorf("Verify = %+v, %v", c, err)
	}
	if _, err := MintScopedTokenForSandbox(testSecret, "team-a", "sb-1", "", time.Minute, now); err == nil {
		t.Error("minted a token with an empty uid")
	}
	if _, err := MintScopedTokenForSandbox(testSecret, "team-a", "sb-1", types.UID(strings.Repeat("u", 129)), time.Minute, now); err == nil {
		t.Error("minted a token with a 129-byte uid")
	}
}

// TestAttackScopedTokenReplayAfterRecreateUnit: a token minted for one
// incarnation of team-a/sb-1 is refused once the name resolves to another
// Sandbox UID, and with RequireScopedTokenUID a token without a uid is
// refused outright.
func TestAttackScopedTokenReplayAfterRecreateUnit(t *testing.T) {
	be := newBackend(t, "127.0.0.1", func(http.ResponseWriter, *http.Request) {})
	plain, _ := NewScopedTokenAuthorizer(testSecret, nil)
	strict, _ := NewScopedTokenAuthorizer(testSecret, nil, RequireScopedTokenUID())
	// The cache holds team-a/sb-1 with UID sandboxUID("team-a","sb-1"): the
	// token below was minted for an earlier incarnation.
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	current, _ := MintScopedTokenForSandbox(testSecret, "team-a", "sb-1", sandboxUID("team-a", "sb-1"), time.Minute, time.Now())
	old, _ := MintScopedTokenForSandbox(testSecret, "team-a", "sb-1", "uid-of-the-deleted-sandbox", time.Minute, time.Now())
	unbound, _ := MintScopedToken(testSecret, "team-a", "sb-1", time.Minute, time.Now())
	for _, tc := range []struct {
		name  string
		authz Authorizer
		token string
		want  int
	}{
		{"current uid", plain, current, 200},
		{"old uid", plain, old, 403},
		{"no uid", plain, unbound, 200},
		{"strict, current uid", strict, current, 200},
		{"strict, old uid", strict, old, 403},
		{"strict, no uid", strict, unbound, 401},
	} {
		r.opts.Authorizer = tc.authz
		req := sandboxRequest(t, front, http.MethodGet, "/", "team-a", "sb-1", be.portNum())
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp := do(t, req)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// A caller that cannot enforce the constraint refuses a bound token.
	req, _ := http.NewRequest(http.MethodGet, "http://x/", http.NoBody)
	req.Header.Set("Authorization", "Bearer "+current)
	if err := plain.Authorize(t.Context(), req, "team-a", "sb-1"); !errors.Is(err, ErrForbidden) {
		t.Errorf("plain Authorize of a uid-bound token = %v, want forbidden", err)
	}
}
