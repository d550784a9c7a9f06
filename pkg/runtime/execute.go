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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"
)

// executeRequest is the body of /execute and /execute/stream.
type executeRequest struct {
	Command *string `json:"command"`
	// TimeoutSeconds is our extension; absent, non-positive or above the
	// maximum, see Server.execTimeout.
	TimeoutSeconds *float64 `json:"timeout_seconds"`
	// Stdin is our extension as well: the command's standard input,
	// base64 (encoding/json's []byte), so binary input survives JSON.
	// Absent, the command reads an empty stdin.
	Stdin []byte `json:"stdin_base64"`
}

// executeResult is the /execute response, success or failure.
type executeResult struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
}

// streamWriteGrace is how long after its command's timeout and output
// drain a stream may still be writing: enough for the terminal line.
const streamWriteGrace = 10 * time.Second

// failurePrefix starts every message about a command that did not run to
// completion, in both the buffered and the streamed API.
const failurePrefix = "Failed to execute command: "

// readExecuteRequest decodes the body, answering 413 or FastAPI's 422
// itself when it cannot. The whole body is read first: net/http only
// notices a client hanging up once the body is consumed, and that is
// what kills the command of a client that went away.
func readExecuteRequest(w http.ResponseWriter, r *http.Request) (executeRequest, bool) {
	var req executeRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxExecRequestBytes))
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		writeJSON(w, http.StatusRequestEntityTooLarge, detailBody{Detail: "Request body too large"})
		return req, false
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, detailBody{Detail: "reading request body: " + err.Error()})
		return req, false
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, detailBody{Detail: "invalid JSON body: " + err.Error()})
		return req, false
	}
	if req.Command == nil {
		writeJSON(w, http.StatusUnprocessableEntity, detailBody{Detail: `field "command" is required`})
		return req, false
	}
	return req, true
}

// handleExecute runs a command to completion and answers 200 with its
// output and exit code; any failure to run it to completion (tokenizing,
// starting, timeout) is still 200, in the legacy failure shape.
func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request) {
	env, ok := s.requestEnv(w, r)
	if !ok {
		return
	}
	req, ok := readExecuteRequest(w, r)
	if !ok {
		return
	}
	stdout := &cappedBuffer{max: s.maxOutput}
	stderr := &cappedBuffer{max: s.maxOutput}
	code, err := s.runCommand(r.Context(), *req.Command, req.Stdin, env, s.execTimeout(req.TimeoutSeconds), func(stream outputStream, chunk []byte) {
		if stream == stderrStream {
			stderr.Write(chunk)
		} else {
			stdout.Write(chunk)
		}
	})
	if err != nil {
		s.logger.V(1).Info("Command failed", "err", err)
		writeJSON(w, http.StatusOK, executeResult{Stderr: failurePrefix + err.Error(), ExitCode: 1})
		return
	}
	writeJSON(w, http.StatusOK, executeResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: code})
}

// streamEvent is one NDJSON line of /execute/stream. The format is shared
// with the SDK: {"type":"stdout"|"stderr","data":...} for output, then
// exactly one of {"type":"exit","exit_code":N} or
// {"type":"error","message":"Failed to execute command: ..."}.
type streamEvent struct {
	Type     string `json:"type"`
	Data     string `json:"data,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Message  string `json:"message,omitempty"`
}

// handleExecuteStream runs a command and streams its output as NDJSON,
// flushing every chunk as soon as a pipe read returns it. Once the body
// is valid the status is 200 whatever happens; the terminal line says how
// the command ended. If the client goes away (a write fails or the
// request context ends) the command's process group is killed.
func (s *Server) handleExecuteStream(w http.ResponseWriter, r *http.Request) {
	env, ok := s.requestEnv(w, r)
	if !ok {
		return
	}
	req, ok := readExecuteRequest(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	// Ask proxies (nginx and friends) not to buffer the stream.
	w.Header().Set("X-Accel-Buffering", "no")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	flusher := http.NewResponseController(w)
	// A client that stops reading but keeps its connection open would
	// block a write forever, and with it the pipe reader, runCommand and
	// Server.Close. No stream outlives its command's timeout plus the
	// drain, so writes get that long; after Close, only long enough for
	// the terminal line. The deadline is cleared at the end: the
	// connection may be kept alive.
	timeout := s.execTimeout(req.TimeoutSeconds)
	_ = flusher.SetWriteDeadline(time.Now().Add(timeout + s.drainTimeout + streamWriteGrace))
	defer func() { _ = flusher.SetWriteDeadline(time.Time{}) }()
	stopOnClose := context.AfterFunc(s.ctx, func() {
		_ = flusher.SetWriteDeadline(time.Now().Add(s.drainTimeout + time.Second))
	})
	defer stopOnClose()
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	writeFailed := false
	send := func(ev streamEvent) {
		if writeFailed {
			return
		}
		line.Reset()
		if err := enc.Encode(ev); err != nil {
			return // our own type; cannot fail
		}
		if _, err := w.Write(line.Bytes()); err != nil {
			writeFailed = true
		} else if err := flusher.Flush(); err != nil {
			writeFailed = true
		}
		if writeFailed {
			cancel(errClientGone)
		}
	}

	// Per stream, the start of a UTF-8 character cut off by the end of a
	// read; it is sent with the next chunk, so JSON never has to replace
	// half a character with U+FFFD.
	var pending [2][]byte
	sendChunk := func(stream outputStream, chunk []byte) {
		data := slices.Concat(pending[stream], chunk)
		complete, partial := splitIncompleteRune(data)
		pending[stream] = append([]byte(nil), partial...)
		if len(complete) > 0 {
			send(streamEvent{Type: stream.String(), Data: string(complete)})
		}
	}
	code, err := s.runCommand(ctx, *req.Command, req.Stdin, env, timeout, sendChunk)
	for stream, rest := range pending {
		if len(rest) > 0 {
			send(streamEvent{Type: outputStream(stream).String(), Data: string(rest)})
		}
	}
	if err != nil {
		send(streamEvent{Type: "error", Message: failurePrefix + err.Error()})
		return
	}
	send(streamEvent{Type: "exit", ExitCode: &code})
}
