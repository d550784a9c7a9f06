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

// Command mcp-server is a minimal Model Context Protocol server over the
// streamable HTTP transport, to run inside a sandbox and reach through
// the sandbox router. It answers initialize, ping, tools/list and
// tools/call with one tool, add, each as a single JSON response (the
// transport lets a server answer a POST with JSON instead of an SSE
// stream), and keeps no session state.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

// protocolVersions are the MCP revisions this server speaks, newest first.
var protocolVersions = []string{"2025-06-18", "2025-03-26"}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// JSON-RPC error codes.
const (
	parseError     = -32700
	invalidRequest = -32600
	methodNotFound = -32601
	invalidParams  = -32602
)

var addTool = map[string]any{
	"name":        "add",
	"description": "Add two numbers.",
	"inputSchema": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"a": map[string]any{"type": "number"},
			"b": map[string]any{"type": "number"},
		},
		"required": []string{"a", "b"},
	},
}

// call runs one method; a nil error result means success.
func call(method string, params json.RawMessage) (any, *rpcError) {
	switch method {
	case "initialize":
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		_ = json.Unmarshal(params, &p)
		// Echo the client's revision if we speak it, else offer ours.
		version := protocolVersions[0]
		for _, v := range protocolVersions {
			if v == p.ProtocolVersion {
				version = v
			}
		}
		return map[string]any{
			"protocolVersion": version,
			"capabilities":    map[string]any{"tools": map[string]any{"listChanged": false}},
			"serverInfo":      map[string]any{"name": "sandbox-mcp-example", "version": "0.1.0"},
		}, nil
	case "ping":
		return map[string]any{}, nil
	case "tools/list":
		return map[string]any{"tools": []any{addTool}}, nil
	case "tools/call":
		var p struct {
			Name      string `json:"name"`
			Arguments struct {
				A *float64 `json:"a"`
				B *float64 `json:"b"`
			} `json:"arguments"`
		}
		if err := json.Unmarshal(params, &p); err != nil || p.Name != "add" || p.Arguments.A == nil || p.Arguments.B == nil {
			return nil, &rpcError{invalidParams, `tools/call: want name "add" and numbers a and b`}
		}
		sum := *p.Arguments.A + *p.Arguments.B
		return map[string]any{
			"content": []any{map[string]any{"type": "text", "text": strconv.FormatFloat(sum, 'g', -1, 64)}},
			"isError": false,
		}, nil
	default:
		return nil, &rpcError{methodNotFound, "method not found: " + method}
	}
}

func serveMCP(w http.ResponseWriter, r *http.Request) {
	// Browsers send Origin; nothing here is for them, and refusing them
	// keeps a web page from reaching the server by DNS rebinding, as the
	// transport asks.
	if r.Header.Get("Origin") != "" {
		http.Error(w, "cross-origin requests are refused", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodPost {
		// No server-initiated stream (GET) and no sessions to end (DELETE).
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{parseError, "parse error"}})
		return
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		writeJSON(w, response{JSONRPC: "2.0", ID: idOrNull(req.ID), Error: &rpcError{invalidRequest, "invalid request"}})
		return
	}
	if len(req.ID) == 0 {
		// A notification (notifications/initialized and the like): no
		// response body.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	result, rerr := call(req.Method, req.Params)
	writeJSON(w, response{JSONRPC: "2.0", ID: req.ID, Result: result, Error: rerr})
}

func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("writing response: %v", err)
	}
}

func main() {
	listen := flag.String("listen", ":8000", "address to serve on; MCP is at /mcp")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", serveMCP)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// Printed once the port is open, so a starter can wait for this line.
	fmt.Println("mcp-server: serving MCP at /mcp")
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
