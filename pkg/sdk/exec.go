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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// commandTimeoutMargin is added to a command's own timeout to get the HTTP
// timeouts of its call: the runtime needs a moment to kill the command and
// answer after the command's deadline.
const commandTimeoutMargin = 10 * time.Second

// ExecutionResult is the outcome of a command that ran. A non-zero ExitCode
// is not an error.
type ExecutionResult struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
}

// execRequest is the body of execute and execute/stream.
type execRequest struct {
	Command string `json:"command"`
	// TimeoutSeconds is our runtime's extension; the legacy runtime
	// ignores unknown fields.
	TimeoutSeconds *int64 `json:"timeout_seconds,omitempty"`
	// Stdin is our runtime's extension too; encoding/json sends a
	// []byte as base64, so any bytes survive the JSON string.
	Stdin []byte `json:"stdin_base64,omitempty"`
}

// Run runs cmd in the sandbox (POST execute) and returns its output once it
// exited. The runtime splits cmd into words with POSIX shell rules and runs
// it without a shell.
//
// Run is never retried, whatever WithMaxAttempts says: if the response is
// lost, the command may have run, and running it again could do harm.
func (s *Sandbox) Run(ctx context.Context, cmd string, opts ...CallOption) (res *ExecutionResult, err error) {
	cc := newCallConfig(opts)
	ctx, span := s.client.startSpan(ctx, "run", s.claimName, attribute.String(AttrCommandExecutable, executable(cmd)))
	defer func() {
		if res != nil {
			span.SetAttributes(attribute.Int(AttrExitCode, res.ExitCode))
		}
		endSpan(span, err)
	}()
	req, err := s.execRequest("run", "execute", cmd, cc)
	if err != nil {
		return nil, s.wrap(err)
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer done()
	ctx, cancel := s.callContext(ctx, cc, commandFloor(cc))
	defer cancel()

	var out struct {
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
		ExitCode *int   `json:"exit_code"`
	}
	if _, err := s.do(ctx, req, func(resp *http.Response) error { return decodeJSON(resp, &out) }); err != nil {
		return nil, s.wrap(fmt.Errorf("run: %w", err))
	}
	res = &ExecutionResult{Stdout: out.Stdout, Stderr: out.Stderr, ExitCode: -1}
	if out.ExitCode != nil {
		res.ExitCode = *out.ExitCode
	}
	return res, nil
}

// execRequest builds the single-attempt request of Run and Stream.
func (s *Sandbox) execRequest(op, endpoint, cmd string, cc callConfig) (request, error) {
	if cmd == "" {
		return request{}, fmt.Errorf("%s: %w: empty command", op, ErrInvalidArgument)
	}
	if cc.commandTimeout < 0 {
		return request{}, fmt.Errorf("%s: %w: negative command timeout", op, ErrInvalidArgument)
	}
	body := execRequest{Command: cmd, Stdin: cc.stdin}
	if cc.commandTimeout > 0 {
		// Whole seconds, rounded up, so a runtime that parses an
		// integer accepts it and the command never gets less time.
		secs := int64(math.Ceil(cc.commandTimeout.Seconds()))
		body.TimeoutSeconds = &secs
	}
	b, err := json.Marshal(body)
	if err != nil {
		return request{}, fmt.Errorf("%s: encoding request: %w", op, err)
	}
	attemptTimeout := cc.attemptTimeout
	if cc.commandTimeout > 0 && attemptTimeout == 0 {
		attemptTimeout = max(s.client.cfg.perAttemptTimeout, cc.commandTimeout+commandTimeoutMargin)
	}
	return request{
		op:             op,
		method:         http.MethodPost,
		endpoint:       endpoint,
		body:           func() io.Reader { return bytes.NewReader(b) },
		contentLength:  int64(len(b)),
		contentType:    "application/json",
		attempts:       1,
		attemptTimeout: attemptTimeout,
	}, nil
}

// commandFloor is the smallest total call timeout that lets a command with a
// timeout finish.
func commandFloor(cc callConfig) time.Duration {
	if cc.commandTimeout <= 0 {
		return 0
	}
	return cc.commandTimeout + commandTimeoutMargin
}
