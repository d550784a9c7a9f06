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
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

type modeOptions struct {
	wait    bool
	timeout time.Duration
	output  string
}

func newSuspendCommand(o *Options) *cobra.Command {
	return newModeCommand(o, "suspend", "suspended", "Suspend a claim's sandbox: delete its Pod, keep its volumes",
		`Set spec.operatingMode: Suspended on the claim's Sandbox. The controller deletes
the sandbox's Pod and keeps the Sandbox, its PersistentVolumeClaims and
Service, so "kubectl sandbox resume" brings the same volumes back. The
claim itself has no operating mode; the Sandbox's is the one the API defines.
With --wait it waits until the Sandbox reports Suspended.`,
		func(ctx context.Context, sc *sdk.Client, name string, opts ...sdk.AttachOption) (string, error) {
			return sc.Suspend(ctx, name, opts...)
		})
}

func newResumeCommand(o *Options) *cobra.Command {
	return newModeCommand(o, "resume", "resumed", "Resume a suspended sandbox",
		`Set spec.operatingMode: Running on the claim's Sandbox, so the controller
creates its Pod again. With --wait it waits until the sandbox is Ready.`,
		func(ctx context.Context, sc *sdk.Client, name string, opts ...sdk.AttachOption) (string, error) {
			return sc.Resume(ctx, name, opts...)
		})
}

// newModeCommand builds suspend and resume, which differ only in the mode
// they set.
func newModeCommand(o *Options, verb, done, short, long string,
	apply func(context.Context, *sdk.Client, string, ...sdk.AttachOption) (string, error)) *cobra.Command {
	var mo modeOptions
	cmd := &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Long:    long + "\n\n" + exitCodesHelp,
		Example: fmt.Sprintf("  kubectl sandbox %s my-task --wait", verb),
		Args:    argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(mo.output, false); err != nil {
				return err
			}
			if mo.timeout <= 0 {
				return usageError("--timeout must be positive, got %v", mo.timeout)
			}
			c, sc, err := o.controlPlane()
			if err != nil {
				return err
			}
			opts := []sdk.AttachOption{sdk.WithReadyTimeout(mo.timeout)}
			if mo.wait {
				opts = append(opts, sdk.WithWaitForReady())
			}
			sandbox, err := apply(cmd.Context(), sc, args[0], opts...)
			if err != nil {
				return notFoundHint(err, c.namespace, args[0])
			}
			if mo.output == outputDefault {
				_, err = fmt.Fprintf(o.streams.Out, "%s/%s %s (sandbox %s)\n", claimResource, args[0], done, sandbox)
				return err
			}
			e, err := o.entry(cmd.Context(), c, c.namespace, args[0])
			if err != nil {
				return err
			}
			return printEntries(o.streams.Out, mo.output, []Entry{e}, true, o.now())
		},
	}
	cmd.Flags().BoolVar(&mo.wait, "wait", false, "wait until the change took effect")
	cmd.Flags().DurationVar(&mo.timeout, "timeout", defaultWaitTimeout, "how long --wait waits")
	addOutputFlag(cmd, &mo.output, false)
	return cmd
}

func newReleaseCommand(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "release NAME...",
		Aliases: []string{"rm"},
		Short:   "Release sandboxes: delete their claims",
		Long: `Delete the SandboxClaims; their Sandboxes, Pods and (unless retained)
volumes follow by garbage collection. Every NAME is tried; the exit code is
that of the first failure.

` + exitCodesHelp,
		Example: "  kubectl sandbox release my-task",
		Args:    argsError(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != outputDefault && output != outputName {
				return usageError("unknown output format %q (release prints names only: -o name)", output)
			}
			c, sc, err := o.controlPlane()
			if err != nil {
				return err
			}
			// A failed write to stdout (a closed pipe) does not stop the
			// releases asked for; it fails the command once they are done.
			var first, writeErr error
			for _, name := range args {
				err := sc.DeleteClaim(cmd.Context(), name)
				if err != nil {
					err = notFoundHint(err, c.namespace, name)
					if first == nil {
						first = err
					}
					if len(args) > 1 {
						// Best effort: the exit code reports the failure
						// even if stderr is gone.
						_, _ = fmt.Fprintf(o.streams.ErrOut, "error: %s\n", displayMessage(err.Error()))
					}
					continue
				}
				line := fmt.Sprintf("%s/%s released\n", claimResource, name)
				if output == outputName {
					line = fmt.Sprintf("%s/%s\n", claimResource, name)
				}
				if _, err := fmt.Fprint(o.streams.Out, line); err != nil && writeErr == nil {
					writeErr = fmt.Errorf("writing output: %w", err)
				}
			}
			if first != nil && len(args) > 1 {
				// Already printed, each with its claim.
				return &ExitError{Code: ExitCode(first)}
			}
			if first != nil {
				return first
			}
			return writeErr
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: name")
	return cmd
}

// notFoundHint rewrites the SDK's error for a claim that does not exist
// into the plugin's wording; a claim whose Sandbox is gone keeps the SDK's
// message. Both exit with ExitNotFound.
func notFoundHint(err error, namespace, name string) error {
	var se apierrors.APIStatus
	if errors.As(err, &se) && apierrors.IsNotFound(err) {
		if d := se.Status().Details; d != nil && d.Kind == extensionsv1beta1.SandboxClaimsResource.Resource {
			return claimNotFound(namespace, name)
		}
	}
	return err
}
