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
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"sync"
)

// ndjsonContentType is the media type of execute/stream responses.
const ndjsonContentType = "application/x-ndjson"

// OutputSource says which output stream a chunk came from.
type OutputSource string

// Output sources of a Chunk.
const (
	Stdout OutputSource = "stdout"
	Stderr OutputSource = "stderr"
)

// Chunk is one piece of a streamed command's output, as the runtime sent it
// (chunk boundaries carry no meaning).
type Chunk struct {
	Source OutputSource
	Data   string
}

// streamLine is one line of the execute/stream NDJSON body.
type streamLine struct {
	Type     string `json:"type"`
	Data     string `json:"data"`
	ExitCode *int   `json:"exit_code"`
	Message  string `json:"message"`
}

// CommandStream is the output of a command started with Stream, read chunk
// by chunk as the runtime sends it:
//
//	cs, err := sb.Stream(ctx, "make test")
//	if err != nil { ... }
//	defer cs.Close()
//	for cs.Next() {
//		c := cs.Chunk()
//		...
//	}
//	if err := cs.Err(); err != nil { ... }
//	fmt.Println("exit code", cs.ExitCode())
//
// A CommandStream is not safe for concurrent use, except Close.
type CommandStream struct {
	sb      *Sandbox
	ctx     context.Context
	body    io.ReadCloser
	scanner *bufio.Scanner
	// release ends the call: it cancels its context and tells Close the
	// operation is over.
	release func()

	cur      Chunk
	exitCode int
	err      error
	ended    bool

	closeOnce sync.Once
}

// Stream starts cmd in the sandbox (POST execute/stream) and returns once the
// runtime accepted it, so output can be read while the command runs. The
// caller must Close the stream (reading it to the end also releases it).
//
// The response is NDJSON: {"type":"stdout"|"stderr","data":...} lines, then
// {"type":"exit","exit_code":N} or {"type":"error","message":...}. The error
// line ends Next with an *ExecError (errors.Is ErrExecFailed); a body that
// ends with neither is ErrStreamTruncated. Like Run, Stream is never
// retried. The call's total timeout (WithTimeout, or the client's request
// timeout when ctx has no deadline) also bounds reading the output.
func (s *Sandbox) Stream(ctx context.Context, cmd string, opts ...CallOption) (*CommandStream, error) {
	cc := newCallConfig(opts)
	req, err := s.execRequest("stream", "execute/stream", cmd, cc)
	if err != nil {
		return nil, s.wrap(err)
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, s.wrap(err)
	}
	ctx, cancel := s.callContext(ctx, cc, commandFloor(cc))
	release := func() { cancel(); done() }

	resp, err := s.do(ctx, req, nil)
	if err != nil {
		release()
		return nil, s.wrap(fmt.Errorf("stream: %w", err))
	}
	if mt, _, perr := mime.ParseMediaType(resp.Header.Get("Content-Type")); perr != nil || mt != ndjsonContentType {
		_ = resp.Body.Close()
		release()
		return nil, s.wrap(fmt.Errorf("stream: %w: content type %q, want %s", ErrUnexpectedResponse, resp.Header.Get("Content-Type"), ndjsonContentType))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxJSONResponseSize)
	return &CommandStream{sb: s, ctx: ctx, body: resp.Body, scanner: sc, release: release, exitCode: -1}, nil
}

// Next waits for the next output chunk and reports whether there is one. It
// returns false at the end of the command's output or on failure; then Err
// and ExitCode say which.
func (cs *CommandStream) Next() bool {
	if cs.ended {
		return false
	}
	for cs.scanner.Scan() {
		line := cs.scanner.Bytes()
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			continue
		}
		var l streamLine
		if err := json.Unmarshal(line, &l); err != nil {
			return cs.finish(fmt.Errorf("stream: %w: bad NDJSON line: %w", ErrUnexpectedResponse, err))
		}
		switch l.Type {
		case string(Stdout), string(Stderr):
			cs.cur = Chunk{Source: OutputSource(l.Type), Data: l.Data}
			return true
		case "exit":
			if l.ExitCode == nil {
				return cs.finish(fmt.Errorf("stream: %w: exit line without exit_code", ErrUnexpectedResponse))
			}
			cs.exitCode = *l.ExitCode
			return cs.finish(nil)
		case "error":
			return cs.finish(fmt.Errorf("stream: %w", &ExecError{Message: l.Message}))
		default:
			// Unknown line types are for newer runtimes; skipping
			// them keeps old SDKs working.
			continue
		}
	}
	err := cs.scanner.Err()
	switch {
	case errors.Is(err, bufio.ErrTooLong):
		err = fmt.Errorf("stream: %w: a line exceeds %d bytes", ErrResponseTooLarge, maxJSONResponseSize)
	case err != nil && cs.ctx.Err() != nil:
		err = fmt.Errorf("stream: %w", ctxError(cs.ctx, err))
	case err != nil:
		err = fmt.Errorf("stream: reading output: %w", err)
	default:
		err = fmt.Errorf("stream: %w", ErrStreamTruncated)
	}
	return cs.finish(err)
}

// finish ends the stream with err (nil after an exit line) and releases it.
func (cs *CommandStream) finish(err error) bool {
	cs.ended = true
	cs.cur = Chunk{}
	if err != nil {
		cs.err = cs.sb.wrap(err)
	}
	_ = cs.Close()
	return false
}

// Chunk returns the chunk that the last successful Next read.
func (cs *CommandStream) Chunk() Chunk { return cs.cur }

// Err returns why the stream ended early, or nil after a normal exit (and
// while it is still running).
func (cs *CommandStream) Err() error { return cs.err }

// ExitCode returns the command's exit code once Next returned false with a
// nil Err, and -1 before that or after a failure.
func (cs *CommandStream) ExitCode() int { return cs.exitCode }

// Close releases the stream. Closing before the end abandons the output;
// whether the command keeps running is the runtime's business. Close is
// idempotent and safe to call concurrently with Next, to interrupt it.
func (cs *CommandStream) Close() error {
	var err error
	cs.closeOnce.Do(func() {
		err = cs.body.Close()
		cs.release()
	})
	return err
}
