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

package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunRequestAndResult(t *testing.T) {
	var got map[string]any
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decoding request: %v", err)
		}
		_, _ = io.WriteString(w, `{"stdout":"a","stderr":"b"}`)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))

	res, err := sb.Run(t.Context(), `echo "a b"`)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"command": `echo "a b"`}, got); d != "" {
		t.Errorf("body (-want,+got):\n%s", d)
	}
	if d := cmp.Diff(&ExecutionResult{Stdout: "a", Stderr: "b", ExitCode: -1}, res); d != "" {
		t.Errorf("a missing exit_code is -1 (-want,+got):\n%s", d)
	}

	if _, err := sb.Run(t.Context(), "sleep 100", WithCommandTimeout(90*time.Second+time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"command": "sleep 100", "timeout_seconds": float64(91)}, got); d != "" {
		t.Errorf("body with command timeout (-want,+got):\n%s", d)
	}
	// The command timeout also raises the attempt timeout sent to the
	// router, so it does not cut the command off.
	to := rec.last().Header.Get("X-Sandbox-Timeout")
	if !strings.HasPrefix(to, "100") {
		t.Errorf("X-Sandbox-Timeout %q, want ~100 (command timeout plus margin)", to)
	}
}

func TestRunResponseTooLarge(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
		_, _ = io.WriteString(w, `{"stdout":"`)
		_, _ = io.WriteString(w, strings.Repeat("x", maxJSONResponseSize))
		_, _ = io.WriteString(w, `"}`)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	if _, err := sb.Run(t.Context(), "yes"); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("error %v: want ErrResponseTooLarge", err)
	}
}

func TestReadSizeCap(t *testing.T) {
	for name, chunked := range map[string]bool{"content-length": false, "chunked": true} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				if !chunked {
					w.Header().Set("Content-Length", "11")
				}
				_, _ = io.WriteString(w, "0123456789A")
			}}
			sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL), WithMaxDownloadSize(11))
			if b, err := sb.Read(t.Context(), "f"); err != nil || string(b) != "0123456789A" {
				t.Errorf("at the cap: %q, %v", b, err)
			}
			_, err := sb.Read(t.Context(), "f", WithMaxBytes(10))
			if !errors.Is(err, ErrResponseTooLarge) {
				t.Errorf("error %v: want ErrResponseTooLarge", err)
			}
			if rec.hits.Load() != 2 {
				t.Errorf("too large was retried: %d hits", rec.hits.Load())
			}
		})
	}
}

func TestWriteMultipart(t *testing.T) {
	type upload struct{ field, filename, content, contentType string }
	var got upload
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		field, filename, content, err := readUpload(r)
		if err != nil {
			t.Errorf("parsing upload: %v", err)
			return
		}
		got = upload{field, filename, content, r.Header.Get("Content-Type")}
		_, _ = fmt.Fprintf(w, `{"message":"File '%s' uploaded successfully."}`, got.filename)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	if err := sb.Write(t.Context(), "dir/my file.txt", []byte("hello\x00world")); err != nil {
		t.Fatal(err)
	}
	if got.field != "file" || got.filename != "dir/my file.txt" || got.content != "hello\x00world" ||
		!strings.HasPrefix(got.contentType, "multipart/form-data; boundary=") {
		t.Errorf("upload %+v", got)
	}
	if r := rec.last(); r.Method != http.MethodPost || r.URL.Path != "/upload" || r.ContentLength <= 0 {
		t.Errorf("request %s %s length %d", r.Method, r.URL.Path, r.ContentLength)
	}
}

// readUpload parses a one-part upload keeping the filename verbatim:
// multipart.Part.FileName would strip the directories.
func readUpload(r *http.Request) (field, filename, content string, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", "", err
	}
	part, err := mr.NextPart()
	if err != nil {
		return "", "", "", err
	}
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return "", "", "", err
	}
	b, err := io.ReadAll(part)
	if err != nil {
		return "", "", "", err
	}
	if _, err := mr.NextPart(); err != io.EOF {
		return "", "", "", fmt.Errorf("want one part, got more (%v)", err)
	}
	return params["name"], params["filename"], string(b), nil
}

func TestWriteSizeCap(t *testing.T) {
	rec := &recorder{reply: jsonReply(`{}`)}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL), WithMaxUploadSize(4))
	if err := sb.Write(t.Context(), "f", []byte("12345")); !errors.Is(err, ErrRequestTooLarge) {
		t.Errorf("error %v: want ErrRequestTooLarge", err)
	}
	if rec.hits.Load() != 0 {
		t.Error("oversized upload was sent")
	}
}

func TestList(t *testing.T) {
	rec := &recorder{reply: jsonReply(`[
		{"name":"a.txt","size":12,"type":"file","mod_time":1700000000.25},
		{"name":"sub","size":4096,"type":"directory","mod_time":1700000001},
		{"name":"sock","size":0,"type":"socket","mod_time":1700000002}
	]`)}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	got, err := sb.List(t.Context(), "work/dir")
	if err != nil {
		t.Fatal(err)
	}
	want := []FileEntry{
		{Name: "a.txt", Size: 12, Type: FileTypeFile, ModTime: time.Unix(1700000000, 250_000_000).UTC()},
		{Name: "sub", Size: 4096, Type: FileTypeDirectory, ModTime: time.Unix(1700000001, 0).UTC()},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("entries (-want,+got):\n%s", d)
	}
	if got[0].ModTime.Location() != time.UTC {
		t.Error("mod time not UTC")
	}
	if r := rec.last(); r.Method != http.MethodGet || r.RequestURI != "/list/work%2Fdir" {
		t.Errorf("request %s %s", r.Method, r.RequestURI)
	}
}

func TestExists(t *testing.T) {
	for body, want := range map[string]bool{`{"path":"f","exists":true}`: true, `{"path":"f","exists":false}`: false} {
		rec := &recorder{reply: jsonReply(body)}
		sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
		got, err := sb.Exists(t.Context(), "f")
		if err != nil || got != want {
			t.Errorf("Exists with %s = %v, %v", body, got, err)
		}
	}
	rec := &recorder{reply: jsonReply(`{"path":"f"}`)}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	if _, err := sb.Exists(t.Context(), "f"); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("missing field: %v, want ErrUnexpectedResponse", err)
	}
	if rec.hits.Load() != 1 {
		t.Errorf("malformed response retried: %d hits", rec.hits.Load())
	}
}

// ndjson writes stream lines, flushing after each.
func ndjson(w http.ResponseWriter, lines ...string) {
	for _, l := range lines {
		_, _ = io.WriteString(w, l+"\n")
		w.(http.Flusher).Flush()
	}
}

func TestStreamDeliversChunksAsTheyArrive(t *testing.T) {
	release := make(chan struct{})
	var secondWritten atomic.Bool
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		ndjson(w, `{"type":"stdout","data":"first\n"}`)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		secondWritten.Store(true)
		ndjson(w, `{"type":"stderr","data":"second"}`, `{"type":"future","x":1}`, ``, `{"type":"exit","exit_code":7}`)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	cs, err := sb.Stream(t.Context(), "python -u job.py", WithCommandTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	gotFirst := make(chan Chunk, 1)
	go func() {
		if cs.Next() {
			gotFirst <- cs.Chunk()
		}
		close(gotFirst)
	}()
	select {
	case c := <-gotFirst:
		if c != (Chunk{Source: Stdout, Data: "first\n"}) {
			t.Errorf("first chunk %+v", c)
		}
		if secondWritten.Load() {
			t.Error("second chunk written before the first was delivered")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first chunk not delivered while the command runs")
	}
	close(release)
	if !cs.Next() || cs.Chunk() != (Chunk{Source: Stderr, Data: "second"}) {
		t.Fatalf("second chunk: %+v, err %v", cs.Chunk(), cs.Err())
	}
	if cs.Next() {
		t.Fatalf("unexpected chunk %+v", cs.Chunk())
	}
	if cs.Err() != nil || cs.ExitCode() != 7 {
		t.Errorf("end: err %v exit %d, want nil and 7", cs.Err(), cs.ExitCode())
	}
	var body map[string]any
	_ = json.NewDecoder(rec.last().Body).Decode(&body)
	if r := rec.last(); r.URL.Path != "/execute/stream" || r.Method != http.MethodPost {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("Close after the end: %v", err)
	}
}

func TestStreamEndings(t *testing.T) {
	tests := map[string]struct {
		contentType string
		lines       []string
		wantIs      error
		wantMsg     string
		streamErr   bool // the error comes from Stream, not Next
	}{
		"error line": {
			lines:   []string{`{"type":"stdout","data":"x"}`, `{"type":"error","message":"Failed to execute command: no such file"}`},
			wantIs:  ErrExecFailed,
			wantMsg: "no such file",
		},
		"no terminal line": {
			lines:  []string{`{"type":"stdout","data":"x"}`},
			wantIs: ErrStreamTruncated,
		},
		"garbage line": {
			lines:  []string{`not json`},
			wantIs: ErrUnexpectedResponse,
		},
		"exit without code": {
			lines:  []string{`{"type":"exit"}`},
			wantIs: ErrUnexpectedResponse,
		},
		"line too long": {
			lines:  []string{`{"type":"stdout","data":"` + strings.Repeat("x", maxJSONResponseSize) + `"}`},
			wantIs: ErrResponseTooLarge,
		},
		"not ndjson": {
			contentType: "application/json",
			lines:       []string{`{"stdout":"","stderr":"","exit_code":0}`},
			wantIs:      ErrUnexpectedResponse,
			streamErr:   true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
				ct := tc.contentType
				if ct == "" {
					ct = "application/x-ndjson; charset=utf-8"
				}
				w.Header().Set("Content-Type", ct)
				ndjson(w, tc.lines...)
			}}
			sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
			cs, err := sb.Stream(t.Context(), "cmd")
			if tc.streamErr {
				if !errors.Is(err, tc.wantIs) {
					t.Fatalf("Stream: %v, want %v", err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			for cs.Next() {
			}
			err = cs.Err()
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Err() = %v, want %v containing %q", err, tc.wantIs, tc.wantMsg)
			}
			if cs.ExitCode() != -1 {
				t.Errorf("exit code %d after a failure, want -1", cs.ExitCode())
			}
			if tc.wantIs == ErrExecFailed {
				ee, ok := errAs[*ExecError](err)
				if !ok || ee.Message != "Failed to execute command: no such file" {
					t.Errorf("want *ExecError with the runtime's message, got %v", err)
				}
			}
			if !strings.HasPrefix(err.Error(), "sandbox[team-a/sandbox-claim-abcde]: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}
}

func TestStreamCloseInterruptsNext(t *testing.T) {
	rec := &recorder{reply: func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		ndjson(w, `{"type":"stdout","data":"x"}`)
		<-r.Context().Done()
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL))
	cs, err := sb.Stream(t.Context(), "sleep 1000")
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Next() {
		t.Fatal(cs.Err())
	}
	time.AfterFunc(50*time.Millisecond, func() { _ = cs.Close() })
	done := make(chan bool)
	go func() { done <- cs.Next() }()
	select {
	case more := <-done:
		if more || cs.Err() == nil {
			t.Errorf("Next after Close = %v, err %v", more, cs.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not interrupt Next")
	}
}

// TestCloseDrainsInFlight checks that Close waits for a running operation
// before deleting the claim, and that the handle refuses new ones meanwhile.
func TestCloseDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	rec := &recorder{reply: func(w http.ResponseWriter, _ *http.Request, _ int) {
		close(started)
		<-release
		_, _ = io.WriteString(w, `{"stdout":"done","stderr":"","exit_code":0}`)
	}}
	sb := testSandbox(t, WithRouterURL(newLoopbackServer(t, rec).URL), WithCleanupTimeout(10*time.Second))
	runDone := make(chan error, 1)
	go func() {
		_, err := sb.Run(t.Context(), "slow")
		runDone <- err
	}()
	<-started
	closeDone := make(chan error, 1)
	go func() { closeDone <- sb.Close(t.Context()) }()

	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-closeDone:
		t.Fatalf("Close returned while an operation was in flight: %v", err)
	default:
	}
	if _, err := sb.Exists(t.Context(), "f"); !errors.Is(err, ErrAlreadyClosed) {
		t.Errorf("new op during Close: %v, want ErrAlreadyClosed", err)
	}
	close(release)
	if err := <-runDone; err != nil {
		t.Errorf("in-flight Run: %v", err)
	}
	if err := <-closeDone; err != nil {
		t.Errorf("Close: %v", err)
	}
}
