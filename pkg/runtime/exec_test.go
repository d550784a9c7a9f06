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
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// streamLine is a decoded /execute/stream line plus when it arrived.
type streamLine struct {
	streamEvent
	at time.Time
}

// startStream posts to /execute/stream and returns the response and a
// channel of its lines, closed at EOF.
func startStream(ctx context.Context, t *testing.T, f *fixture, body string) (*http.Response, <-chan streamLine) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.http.URL+"/execute/stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan streamLine, 64)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev streamEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("bad NDJSON line %q: %v", sc.Text(), err)
				return
			}
			lines <- streamLine{streamEvent: ev, at: time.Now()}
		}
	}()
	return resp, lines
}

func collect(lines <-chan streamLine) []streamLine {
	var all []streamLine
	for l := range lines {
		all = append(all, l)
	}
	return all
}

func intPtr(i int) *int { return &i }

func TestExecuteStreamWireFormat(t *testing.T) {
	f := newFixture(t, Options{})
	for name, tc := range map[string]struct {
		body string
		want []streamEvent // output chunks concatenated per stream, then the terminal line
	}{
		"output then exit": {
			body: `{"command":"sh -c 'echo out; echo err >&2; exit 4'"}`,
			want: []streamEvent{{Type: "stdout", Data: "out\n"}, {Type: "stderr", Data: "err\n"}, {Type: "exit", ExitCode: intPtr(4)}},
		},
		"exit 0 is sent": {
			body: `{"command":"true"}`,
			want: []streamEvent{{Type: "exit", ExitCode: intPtr(0)}},
		},
		"cannot start": {
			body: `{"command":"no-such-command-xyz"}`,
			want: []streamEvent{{Type: "error", Message: `Failed to execute command: exec: "no-such-command-xyz": executable file not found in $PATH`}},
		},
		"cannot tokenize": {
			body: `{"command":"echo \"abc"}`,
			want: []streamEvent{{Type: "error", Message: "Failed to execute command: no closing quotation"}},
		},
		"timeout: output so far, then an error line and no exit line": {
			body: `{"command":"sh -c 'echo started; exec sleep 10'","timeout_seconds":0.3}`,
			want: []streamEvent{{Type: "stdout", Data: "started\n"}, {Type: "error", Message: "Failed to execute command: command 'sh -c 'echo started; exec sleep 10'' timed out after 0.3 seconds"}},
		},
		"multi-byte characters are never split": {
			body: `{"command":"printf '\u00e9\u00e9\u00e9'"}`,
			want: []streamEvent{{Type: "stdout", Data: "ééé"}, {Type: "exit", ExitCode: intPtr(0)}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resp, lines := startStream(t.Context(), t, f, tc.body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Errorf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			// Chunking is up to the pipes, and stdout and stderr are
			// read concurrently, so their relative order is not
			// defined: compare each stream's output concatenated,
			// stdout first, then the terminal line, which must come
			// last.
			var stdout, stderr strings.Builder
			var terminal []streamEvent
			for _, l := range collect(lines) {
				switch l.Type {
				case "stdout", "stderr":
					if len(terminal) > 0 {
						t.Errorf("%s output %q after the terminal line", l.Type, l.Data)
					}
					if l.Type == "stdout" {
						stdout.WriteString(l.Data)
					} else {
						stderr.WriteString(l.Data)
					}
				default:
					terminal = append(terminal, l.streamEvent)
				}
			}
			var got []streamEvent
			if stdout.Len() > 0 {
				got = append(got, streamEvent{Type: "stdout", Data: stdout.String()})
			}
			if stderr.Len() > 0 {
				got = append(got, streamEvent{Type: "stderr", Data: stderr.String()})
			}
			got = append(got, terminal...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want,+got):\n%s", diff)
			}
		})
	}
}

// TestExecuteStreamDeliversOutputAsItHappens: the first chunk must reach
// the client while the command is still running, not when it ends.
func TestExecuteStreamDeliversOutputAsItHappens(t *testing.T) {
	f := newFixture(t, Options{})
	_, lines := startStream(t.Context(), t, f, `{"command":"sh -c 'echo a; sleep 1; echo b'"}`)
	all := collect(lines)
	if len(all) < 3 || all[0].Data != "a\n" || all[len(all)-1].Type != "exit" {
		t.Fatalf("lines = %+v", all)
	}
	if gap := all[len(all)-1].at.Sub(all[0].at); gap < 500*time.Millisecond {
		t.Errorf("first chunk arrived only %v before the exit line; it was held back", gap)
	}
}

// TestExecuteTimeoutKillsProcessGroup: a child the command started dies
// with it when the timeout fires.
func TestExecuteTimeoutKillsProcessGroup(t *testing.T) {
	f := newFixture(t, Options{})
	pidFile := filepath.Join(f.base, "child.pid")
	start := time.Now()
	got := f.execute(t, `{"command":"sh -c 'sleep 30 & echo $! > child.pid; wait'","timeout_seconds":0.5}`)
	want := `{"stdout":"","stderr":"Failed to execute command: command 'sh -c 'sleep 30 & echo $! > child.pid; wait'' timed out after 0.5 seconds","exit_code":1}`
	if got.status != http.StatusOK || got.body != want {
		t.Errorf("execute = %d %s, want 200 %s", got.status, got.body, want)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v to time out", elapsed)
	}
	waitDead(t, readPIDFile(t, pidFile), 5*time.Second)
}

// TestExecuteDefaultTimeout: without timeout_seconds the server default
// applies.
func TestExecuteDefaultTimeout(t *testing.T) {
	f := newFixture(t, Options{DefaultTimeout: 300 * time.Millisecond})
	got := f.execute(t, `{"command":"sleep 10"}`)
	if !strings.Contains(got.body, "timed out after 0.3 seconds") {
		t.Errorf("execute = %s", got.body)
	}
	got = f.execute(t, `{"command":"sleep 10","timeout_seconds":-1}`)
	if !strings.Contains(got.body, "timed out after 0.3 seconds") {
		t.Errorf("execute with a negative timeout = %s", got.body)
	}
}

// TestExecuteStreamClientDisconnectKillsProcess: hanging up kills the
// command (and its group) instead of letting it run to its timeout.
func TestExecuteStreamClientDisconnectKillsProcess(t *testing.T) {
	f := newFixture(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, lines := startStream(ctx, t, f, `{"command":"sh -c 'sleep 60 & echo $! > child.pid; echo $$ > leader.pid; echo ready; wait'"}`)
	first, ok := <-lines
	if !ok || first.Data != "ready\n" {
		t.Fatalf("first line = %+v, %v", first, ok)
	}
	leader := readPIDFile(t, filepath.Join(f.base, "leader.pid"))
	child := readPIDFile(t, filepath.Join(f.base, "child.pid"))
	cancel()
	waitDead(t, leader, 10*time.Second)
	waitDead(t, child, 10*time.Second)
}

// TestExecuteBufferedClientDisconnectKillsProcess: the same for /execute.
func TestExecuteBufferedClientDisconnectKillsProcess(t *testing.T) {
	f := newFixture(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.http.URL+"/execute",
			strings.NewReader(`{"command":"sh -c 'echo $$ > leader.pid; exec sleep 60'"}`))
		if resp, err := f.http.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	leader := readPIDFile(t, filepath.Join(f.base, "leader.pid"))
	cancel()
	<-done
	waitDead(t, leader, 10*time.Second)
}

// TestCloseKillsRunningCommands: Server.Close ends every command and
// makes new ones fail.
func TestCloseKillsRunningCommands(t *testing.T) {
	f := newFixture(t, Options{})
	result := make(chan response, 1)
	go func() {
		result <- f.execute(t, `{"command":"sh -c 'echo $$ > leader.pid; exec sleep 60'"}`)
	}()
	leader := readPIDFile(t, filepath.Join(f.base, "leader.pid"))
	f.srv.Close()
	waitDead(t, leader, 5*time.Second)
	want := `{"stdout":"","stderr":"Failed to execute command: the runtime is shutting down","exit_code":1}`
	if got := <-result; got.body != want {
		t.Errorf("running command = %s, want %s", got.body, want)
	}
	if got := f.execute(t, `{"command":"true"}`); got.body != want {
		t.Errorf("new command = %s, want %s", got.body, want)
	}
}

// TestExecuteOutputCap: a runaway command's buffered output is cut at
// the cap with a marker; the server keeps draining so the command ends.
func TestExecuteOutputCap(t *testing.T) {
	f := newFixture(t, Options{MaxOutputBytes: 1000})
	got := f.execute(t, `{"command":"sh -c 'yes | head -c 100000; printf é >&2'"}`)
	var res executeResult
	if err := json.Unmarshal([]byte(got.body), &res); err != nil {
		t.Fatalf("%v: %s", err, got.body)
	}
	wantStdout := strings.Repeat("y\n", 500) + "\n[output truncated: 99000 more bytes]"
	if res.Stdout != wantStdout || res.Stderr != "é" || res.ExitCode != 0 {
		t.Errorf("result = %+v", res)
	}
}

func TestCappedBufferKeepsWholeCharacters(t *testing.T) {
	b := &cappedBuffer{max: 4}
	b.Write([]byte("abcé")) // é is 2 bytes: only its first fits
	b.Write([]byte("z"))
	if got, want := b.String(), "abc\n[output truncated: 3 more bytes]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestExecuteBackgroundChildHoldingPipes: a command that leaves a child
// holding stdout returns after the drain timeout instead of hanging, and
// the child (which may be a daemon the user wanted) is left alone.
func TestExecuteBackgroundChildHoldingPipes(t *testing.T) {
	f := newFixture(t, Options{DrainTimeout: 200 * time.Millisecond})
	start := time.Now()
	got := f.execute(t, `{"command":"sh -c 'sleep 30 & echo $! > bg.pid; echo done'"}`)
	pid := readPIDFile(t, filepath.Join(f.base, "bg.pid"))
	t.Cleanup(func() { killAndWait(t, pid) })
	if want := `{"stdout":"done\n","stderr":"","exit_code":0}`; got.body != want {
		t.Errorf("execute = %s, want %s", got.body, want)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
	if !processAlive(pid) {
		t.Errorf("background child was killed")
	}
}

func TestExecuteStdin(t *testing.T) {
	f := newFixture(t, Options{})
	// Binary bytes and more than a pipe buffer: the copy must not stall.
	big := strings.Repeat("0123456789abcdef", 8192) + "\x00\xff"
	for name, tc := range map[string]struct {
		body, stdout string
	}{
		"stdin":         {fmt.Sprintf(`{"command":"cat","stdin_base64":%q}`, base64.StdEncoding.EncodeToString([]byte("hello\n"))), "hello\n"},
		"binary, large": {fmt.Sprintf(`{"command":"wc -c","stdin_base64":%q}`, base64.StdEncoding.EncodeToString([]byte(big))), fmt.Sprintf("%d\n", len(big))},
		"absent":        {`{"command":"cat"}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			got := f.execute(t, tc.body)
			var res executeResult
			if err := json.Unmarshal([]byte(got.body), &res); err != nil {
				t.Fatalf("%v: %s", err, got.body)
			}
			if strings.TrimLeft(res.Stdout, " ") != tc.stdout || res.ExitCode != 0 {
				t.Errorf("result = %+v, want stdout %q", res, tc.stdout)
			}
		})
	}
	t.Run("stream", func(t *testing.T) {
		_, lines := startStream(t.Context(), t, f, fmt.Sprintf(`{"command":"cat","stdin_base64":%q}`, base64.StdEncoding.EncodeToString([]byte("streamed"))))
		var out string
		for _, l := range collect(lines) {
			out += l.Data
		}
		if out != "streamed" {
			t.Errorf("streamed stdout %q, want %q", out, "streamed")
		}
	})
	if got := f.execute(t, `{"command":"cat","stdin_base64":"not base64!"}`); got.status != http.StatusUnprocessableEntity {
		t.Errorf("bad base64: status %d, want 422", got.status)
	}
}
