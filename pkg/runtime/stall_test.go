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
	"fmt"
	"net"
	"testing"
	"time"
)

// TestExecuteStreamStalledClient: a client that starts a stream and then
// never reads, but keeps its connection open, must not pin the command's
// bookkeeping forever. Before the fix the reader goroutine blocked in the
// response write after the timeout had killed the command, runCommand
// never returned, and Server.Close (the runtime's shutdown) hung.
func TestExecuteStreamStalledClient(t *testing.T) {
	f := newFixture(t, Options{DrainTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", f.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A tiny receive window fills at once.
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	body := `{"command":"yes","timeout_seconds":1}`
	if _, err := fmt.Fprintf(conn, "POST /execute/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatal(err)
	}
	// Never read. Wait past the command's timeout, then shut down.
	time.Sleep(1500 * time.Millisecond)
	closed := make(chan struct{})
	go func() { f.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Server.Close hung on a stream whose client stopped reading")
	}
}
