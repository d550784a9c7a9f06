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
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRequestFormsNeverRetarget: nothing in the request line or Host
// header moves the dial off the resolved Pod: absolute-form URIs,
// authority-looking paths, CONNECT, OPTIONS *, and a Host naming
// another server.
func TestRequestFormsNeverRetarget(t *testing.T) {
	decoy := newBackend(t, "127.0.0.2", func(http.ResponseWriter, *http.Request) {})
	var (
		mu   sync.Mutex
		seen []string
	)
	be := newBackend(t, "127.0.0.1", func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI)
		mu.Unlock()
	})
	r, _ := newTestRouter(t, nil, sandboxPod("team-a", "sb-1", "127.0.0.1"))
	front := frontend(t, r)
	d := net.JoinHostPort(decoy.ip, decoy.port)

	for _, tc := range []struct {
		line string
		want int
	}{
		{"GET http://" + d + "/abs HTTP/1.1", 200},
		{"GET //" + d + "/x HTTP/1.1", 200},
		{"GET /http://" + d + "/y HTTP/1.1", 200},
		{"GET /a/../../" + d + " HTTP/1.1", 200},
		{"CONNECT " + d + " HTTP/1.1", 400},
		{"OPTIONS * HTTP/1.1", 200}, // answered by net/http itself, never proxied
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(conn, "%s\r\nHost: %s\r\nX-Sandbox-ID: sb-1\r\nX-Sandbox-Namespace: team-a\r\nX-Sandbox-Port: %s\r\nConnection: close\r\n\r\n", tc.line, d, be.port); err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.line, resp.StatusCode, tc.want)
		}
	}
	if n := decoy.hits.Load(); n != 0 {
		t.Errorf("decoy dialled %d times", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Errorf("sandbox saw %q, want the four GETs only", seen)
	}
}
