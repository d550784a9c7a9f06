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
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package that has one of
// these causes wraps it, so callers test with errors.Is.
var (
	// ErrNotReady means the sandbox cannot serve requests: it has no
	// routable address, or (Attach) it is not bound or not Ready.
	ErrNotReady = errors.New("sandbox not ready")
	// ErrTimeout means a deadline passed while waiting, either for the
	// sandbox to become Ready or for an operation to finish.
	ErrTimeout = errors.New("timed out")
	// ErrClaimFailed means the SandboxClaim could not be created.
	ErrClaimFailed = errors.New("creating sandbox claim failed")
	// ErrSandboxDeleted means the claim or its Sandbox was deleted (or
	// never existed) while the SDK needed it.
	ErrSandboxDeleted = errors.New("sandbox deleted")
	// ErrRetriesExhausted means every attempt of a retried operation
	// failed; it wraps the last failure as well.
	ErrRetriesExhausted = errors.New("retries exhausted")
	// ErrResponseTooLarge means a response body exceeded its size cap.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrRequestTooLarge means an upload exceeded the upload size cap; it
	// is reported before any I/O.
	ErrRequestTooLarge = errors.New("request too large")
	// ErrAlreadyClosed means the handle was closed or disconnected; new
	// operations are refused so Close can drain the ones in flight.
	ErrAlreadyClosed = errors.New("sandbox handle already closed")
	// ErrInvalidArgument means an argument was rejected before any I/O.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrExecFailed means the runtime reported that it could not run a
	// streamed command (a terminal {"type":"error"} line). A command that
	// ran and exited non-zero is not an error.
	ErrExecFailed = errors.New("command execution failed")
	// ErrStreamTruncated means a command stream ended without its terminal
	// exit or error line.
	ErrStreamTruncated = errors.New("command stream ended without a terminal line")
	// ErrUnexpectedResponse means a 2xx response did not have the shape the
	// runtime API promises.
	ErrUnexpectedResponse = errors.New("unexpected response")
)

const (
	// errorBodyReadLimit bounds how much of an error response is read, so
	// a hostile or broken server cannot make error handling expensive.
	errorBodyReadLimit = 512
	// errorBodyShowLimit bounds how much of it ends up in an error message.
	errorBodyShowLimit = 256
)

// HTTPError is a non-2xx response from the router or the runtime. A 3xx is
// one too: redirects are never followed.
type HTTPError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Body is the start of the response body (at most 256 bytes).
	Body string
	// Operation names the SDK operation, for example "read".
	Operation string
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s returned status %d: %s", e.Operation, e.StatusCode, e.Body)
}

// ExecError is the runtime's report that it could not run a streamed
// command; it matches ErrExecFailed with errors.Is.
type ExecError struct {
	// Message is the runtime's message, verbatim.
	Message string
}

// Error implements error.
func (e *ExecError) Error() string {
	return ErrExecFailed.Error() + ": " + e.Message
}

// Is makes errors.Is(err, ErrExecFailed) true.
func (e *ExecError) Is(target error) bool { return target == ErrExecFailed }

// truncateBody keeps an error message readable whatever the server sent.
func truncateBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(s) > errorBodyShowLimit {
		s = s[:errorBodyShowLimit]
		// Do not end on half a rune.
		s = strings.ToValidUTF8(s, "")
	}
	return strings.TrimSpace(s)
}

// prefixed names the sandbox in front of an error. The claim name is "" only
// before the claim exists.
func prefixed(namespace, claim string, err error) error {
	if err == nil {
		return nil
	}
	if claim == "" {
		claim = "<new>"
	}
	return fmt.Errorf("sandbox[%s/%s]: %w", namespace, claim, err)
}
