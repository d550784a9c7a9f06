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
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/pkg/shellwords"
)

type execOptions struct {
	stdin   bool
	timeout time.Duration
}

func newExecCommand(o *Options) *cobra.Command {
	var eo execOptions
	cmd := &cobra.Command{
		Use:   "exec NAME [-i] [--timeout D] -- COMMAND [ARG...]",
		Short: "Run a command in a sandbox",
		Long: `Run COMMAND with its arguments in the sandbox of claim NAME, through the
sandbox router, streaming its stdout and stderr as the runtime sends them.
The arguments reach the command exactly as given: they are quoted for the
runtime, which runs the command without a shell (for pipes or redirections
run "sh -c '...'"), in the sandbox's base directory.

With -i, standard input is read to its end first and handed to the command as
its stdin (the sandbox runtime's stdin_base64 extension); without it the
command's stdin is empty. --timeout stops the command after D (the runtime
kills its process group).

NAME is a SandboxClaim's name, not a Sandbox's: the claim is the handle the
plugin manages (claim, release); a warm sandbox's own name is generated.

Exit codes: the command's own exit code when it ran (128+N when signal N
killed it); otherwise
  1    error (API server, router or network)
  2    usage error
  3    not found (no such claim, or its sandbox is gone)
  4    timed out (--timeout ran out)
  126  the runtime could not start the command
  127  the runtime did not find the command`,
		Example: `  kubectl sandbox exec my-task -- python3 -c 'print(6*7)'
  echo hello | kubectl sandbox exec my-task -i -- cat
  kubectl sandbox exec my-task --timeout 10s -- sh -c 'make test 2>&1 | tail'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usageError("exec needs NAME -- COMMAND [ARG...]\nSee '%s --help'", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runExec(cmd.Context(), args[0], args[1:], eo)
		},
	}
	cmd.Flags().BoolVarP(&eo.stdin, "stdin", "i", false, "pass standard input to the command")
	cmd.Flags().DurationVar(&eo.timeout, "timeout", 0, "stop the command after this long (0: the runtime's default)")
	return cmd
}

func (o *Options) runExec(ctx context.Context, name string, argv []string, eo execOptions) error {
	if eo.timeout < 0 {
		return usageError("--timeout must not be negative, got %v", eo.timeout)
	}
	var stdin []byte
	if eo.stdin {
		b, err := io.ReadAll(o.streams.In)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		stdin = b
	}
	c, sc, closeRouter, err := o.dataPlane(ctx)
	if err != nil {
		return err
	}
	defer closeRouter()
	sb, err := sc.Attach(ctx, name)
	if err != nil {
		return notFoundHint(err, c.namespace, name)
	}
	defer sb.Disconnect()

	var opts []sdk.CallOption
	if eo.timeout > 0 {
		opts = append(opts, sdk.WithCommandTimeout(eo.timeout))
	}
	if eo.stdin {
		opts = append(opts, sdk.WithStdin(stdin))
	}
	cs, err := sb.Stream(ctx, shellwords.Join(argv), opts...)
	if err != nil {
		return routerHint(err)
	}
	// The stream's end and its error are read below; closing releases
	// the response body and has nothing to add.
	defer func() { _ = cs.Close() }()
	for cs.Next() {
		ch := cs.Chunk()
		w := o.streams.Out
		if ch.Source == sdk.Stderr {
			w = o.streams.ErrOut
		}
		if _, err := io.WriteString(w, ch.Data); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	if err := cs.Err(); err != nil {
		return execFailure(err)
	}
	if code := cs.ExitCode(); code != 0 {
		return &ExitError{Code: remoteExitCode(code)}
	}
	return nil
}

// remoteExitCode maps the runtime's exit code to ours: a death by signal N
// (reported as -N, as Python does) becomes 128+N, as shells report it.
func remoteExitCode(code int) int {
	if code < 0 {
		return 128 + (-code & 0x7f)
	}
	return code & 0xff
}

// execFailure classifies the runtime's report that a command did not run
// to completion. The runtime's messages are its own (pkg/runtime): a
// timeout says "timed out after", a missing executable "not found".
func execFailure(err error) error {
	var ee *sdk.ExecError
	if !errors.As(err, &ee) {
		return err
	}
	switch {
	case strings.Contains(ee.Message, "timed out after"):
		return &ExitError{Code: ExitTimeout, Err: err}
	case strings.Contains(ee.Message, "not found"), strings.Contains(ee.Message, "no such file"):
		return &ExitError{Code: ExitCommandNotFound, Err: err}
	}
	return &ExitError{Code: ExitCannotRun, Err: err}
}
