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

package examples

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentsandbox/agent-sandbox/pkg/cli"
	"github.com/agentsandbox/agent-sandbox/test/integration/framework"
)

// TestMCPServer runs docs/examples/mcp-server/README.md: build the
// server, copy it into a sandbox of the python-runtime pool, start it in
// the background through exec, and speak MCP to it through the router
// with the X-Sandbox-Port header, checking each response the README shows.
func TestMCPServer(t *testing.T) {
	f := setup(t, true)
	f.kubectl("apply", "-f", example("python-runtime", "python-runtime.yaml"))
	f.waitPoolReady("python-runtime-pool", 2)

	bin := filepath.Join(t.TempDir(), "mcp-server")
	build := exec.CommandContext(f.ctx, "go", "build", "-o", bin, "./docs/examples/mcp-server")
	build.Dir = framework.RepoRoot()
	build.Env = append(build.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if r := f.sandbox("claim", "mcp", "--pool", "python-runtime-pool", "--wait"); r.Code != cli.ExitOK {
		t.Fatalf("claim --wait: %+v", r)
	}
	if r := f.sandbox("cp", bin, "mcp:mcp-server"); r.Code != cli.ExitOK {
		t.Fatalf("cp mcp-server: %+v", r)
	}
	ip := f.kubectl("get", "sandboxclaim", "mcp", "-o", "jsonpath={.status.sandbox.podIPs[0]}")
	sb := f.kubectl("get", "sandboxclaim", "mcp", "-o", "jsonpath={.status.sandbox.name}")
	if r := f.sandbox("exec", "mcp", "--", "sh", "-c", strings.ReplaceAll(startServer, "$IP", ip)); r.Code != 0 || r.Stdout != "mcp-server: serving MCP at /mcp\n" {
		t.Fatalf("starting the server: %+v", r)
	}

	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`,
			http.StatusOK, `{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"tools":{"listChanged":false}},"protocolVersion":"2025-06-18","serverInfo":{"name":"sandbox-mcp-example","version":"0.1.0"}}}` + "\n"},
		{"initialized", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusAccepted, ""},
		{"tools/list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
			http.StatusOK, `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"description":"Add two numbers.","inputSchema":{"properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"type":"object"},"name":"add"}]}}` + "\n"},
		{"tools/call", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}`,
			http.StatusOK, `{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"5","type":"text"}],"isError":false}}` + "\n"},
	} {
		req, err := http.NewRequestWithContext(f.ctx, http.MethodPost, f.routerURL+"/mcp", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("X-Sandbox-ID", sb)
		req.Header.Set("X-Sandbox-Namespace", f.env.Namespace)
		req.Header.Set("X-Sandbox-Port", "8000")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.StatusCode != c.code || string(body) != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.code, c.want)
		}
	}

	if r := f.sandbox("release", "mcp"); r.Code != cli.ExitOK {
		t.Errorf("release: %+v", r)
	}
}

// startServer is the README's start command, $IP substituted by the
// shell there: start the server in the background, its output in a file,
// and wait (5 s at most) for the line it prints once it listens.
const startServer = `chmod +x mcp-server && (./mcp-server --listen $IP:8000 >mcp.log 2>&1 &); for i in $(seq 50); do grep -q serving mcp.log && break; sleep 0.1; done; cat mcp.log`
