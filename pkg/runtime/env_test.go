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

package runtime

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/klog/v2/ktesting"

	"github.com/agentsandbox/agent-sandbox/pkg/warmenv"
)

// postWithEnv posts body to path with the given X-Sandbox-Env values (none:
// no header).
func postWithEnv(t *testing.T, f *fixture, path, body string, env ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, v := range env {
		req.Header.Add(warmenv.Header, v)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// envLines is the output of `env`, one variable a line, from either route.
func envLines(t *testing.T, path string, r response) []string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d, body %s", path, r.status, r.body)
	}
	var out string
	if path == "/execute" {
		var res executeResult
		if err := json.Unmarshal([]byte(r.body), &res); err != nil {
			t.Fatal(err)
		}
		out = res.Stdout
	} else {
		for _, line := range strings.Split(strings.TrimSpace(r.body), "\n") {
			var ev streamEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == "stdout" {
				out += ev.Data
			}
		}
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// The header's variables reach the command on both exec routes, replacing
// same-named ones of the runtime's own environment (a claim variable wins,
// as a pod-spec one wins over the image's) and leaving the rest; without
// the header the command sees the runtime's environment only.
func TestExecuteEnvOverlay(t *testing.T) {
	t.Setenv("WARMENV_TEMPLATE", "from-template")
	t.Setenv("WARMENV_KEPT", "kept")
	f := newFixture(t, Options{})
	header := warmenv.EncodeHeader([]warmenv.Var{{Name: "TOKEN", Value: "s3cret value"}, {Name: "WARMENV_TEMPLATE", Value: "from-claim"}})
	for _, path := range []string{"/execute", "/execute/stream"} {
		t.Run(path, func(t *testing.T) {
			got := envLines(t, path, postWithEnv(t, f, path, `{"command":"env"}`, header))
			for _, want := range []string{"TOKEN=s3cret value", "WARMENV_TEMPLATE=from-claim", "WARMENV_KEPT=kept"} {
				if !slices.Contains(got, want) {
					t.Errorf("env lacks %s: %q", want, got)
				}
			}
			if slices.Contains(got, "WARMENV_TEMPLATE=from-template") {
				t.Errorf("the runtime's own value survived next to the claim's: %q", got)
			}
			plain := envLines(t, path, postWithEnv(t, f, path, `{"command":"env"}`))
			if slices.ContainsFunc(plain, func(l string) bool { return strings.HasPrefix(l, "TOKEN=") }) || !slices.Contains(plain, "WARMENV_TEMPLATE=from-template") {
				t.Errorf("without the header: %q", plain)
			}
		})
	}
	if os.Getenv("TOKEN") != "" {
		t.Error("the overlay leaked into the runtime's own environment")
	}
}

// A header the runtime cannot use is answered 400 with a constant detail
// that never echoes it, on both routes, before the command runs (the
// stream never starts), and nothing of it reaches the log.
func TestExecuteInvalidEnvRefused(t *testing.T) {
	const secret = "evil-s3cret-value"
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true), ktesting.Verbosity(10)))
	buf := logger.GetSink().(ktesting.Underlier).GetBuffer()
	f := newFixture(t, Options{Logger: &logger})
	valid := warmenv.EncodeHeader([]warmenv.Var{{Name: "TOKEN", Value: secret}})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for name, values := range map[string][]string{
		"not base64":            {"TOKEN=" + secret},
		"not a JSON array":      {b64(`{"TOKEN":"` + secret + `"}`)},
		"a name with =":         {b64(`[{"name":"TOKEN=` + secret + `","value":"x"}]`)},
		"a NUL in the value":    {b64(`[{"name":"TOKEN","value":"` + secret + `\u0000"}]`)},
		"two headers":           {valid, valid},
		"longer than the bound": {strings.Repeat(b64(secret), warmenv.MaxHeaderBytes/len(b64(secret))+1)},
	} {
		for _, path := range []string{"/execute", "/execute/stream"} {
			t.Run(name+" "+path, func(t *testing.T) {
				marker := filepath.Join(f.base, "ran")
				r := postWithEnv(t, f, path, `{"command":"touch ran"}`, values...)
				if r.status != http.StatusBadRequest || r.body != `{"detail":"Invalid X-Sandbox-Env header."}` {
					t.Errorf("status %d body %s, want 400 and the constant detail", r.status, r.body)
				}
				if _, err := os.Stat(marker); err == nil {
					t.Error("the command ran")
				}
			})
		}
	}
	if !strings.Contains(buf.String(), "Refused a command with an invalid X-Sandbox-Env header") {
		t.Errorf("the refusals were not logged (is the log captured?):\n%s", buf.String())
	}
	if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), b64(secret)) {
		t.Errorf("the log holds the header's value:\n%s", buf.String())
	}
}
