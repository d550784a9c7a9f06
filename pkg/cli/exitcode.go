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

package cli

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// Exit codes of every verb. exec returns the remote command's code instead
// when the command ran; the codes below then only say that it did not.
const (
	ExitOK = 0
	// ExitFailure is any failure without a code of its own: the API
	// server or the router refused, the network failed.
	ExitFailure = 1
	// ExitUsage is a bad flag or argument; nothing was sent anywhere.
	ExitUsage = 2
	// ExitNotFound is a claim (or its sandbox) that does not exist.
	ExitNotFound = 3
	// ExitTimeout is a wait (--wait, --timeout) that ran out.
	ExitTimeout = 4
	// ExitCannotRun is a command the runtime could not start (exec).
	ExitCannotRun = 126
	// ExitCommandNotFound is a command the runtime did not find (exec).
	ExitCommandNotFound = 127
)

const exitCodesHelp = `Exit codes:
  0    success
  1    error (API server, router or network)
  2    usage error (bad flag or argument)
  3    not found (no such claim, or its sandbox is gone)
  4    timed out (--wait or --timeout ran out)`

// ExitError carries a process exit code with the error to print (nil Err:
// print nothing, e.g. a remote command's own non-zero exit).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks err as a usage error (exit 2).
func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error returned by a verb to the process exit code.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, sdk.ErrInvalidArgument):
		return ExitUsage
	case errors.Is(err, sdk.ErrSandboxDeleted), apierrors.IsNotFound(err):
		return ExitNotFound
	case errors.Is(err, sdk.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	}
	return ExitFailure
}
