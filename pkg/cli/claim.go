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
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spf13/cobra"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
)

// defaultWaitTimeout bounds --wait; the SDK's ready timeout.
const defaultWaitTimeout = sdk.DefaultReadyTimeout

type claimOptions struct {
	pool    string
	wait    bool
	timeout time.Duration
	ttl     time.Duration
	labels  []string
	output  string
}

func newClaimCommand(o *Options) *cobra.Command {
	var co claimOptions
	cmd := &cobra.Command{
		Use:   "claim [NAME] --pool POOL",
		Short: "Claim a sandbox from a warm pool",
		Long: `Create a SandboxClaim for the warm pool POOL, named NAME or, without NAME,
sandbox-claim-<random>. It prints the claim's name.

With --wait it waits until the claim's sandbox is Ready, then prints the
sandbox's name, whether it came warm from the pool or was created cold, and
how long that took. If the wait fails or times out, the claim is deleted
again, so a failed --wait leaves nothing behind.

` + exitCodesHelp,
		Example: `  # Claim a sandbox from the pool "python" and wait for it
  kubectl sandbox claim --pool python --wait

  # A named claim that expires after 30 minutes, with a label
  kubectl sandbox claim my-task --pool python --ttl 30m --label team=ml`,
		Args: argsError(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return o.runClaim(cmd.Context(), name, co)
		},
	}
	f := cmd.Flags()
	f.StringVar(&co.pool, "pool", "", "SandboxWarmPool to claim from (required)")
	f.BoolVar(&co.wait, "wait", false, "wait until the sandbox is Ready")
	f.DurationVar(&co.timeout, "timeout", defaultWaitTimeout, "how long --wait waits")
	f.DurationVar(&co.ttl, "ttl", 0, "expire the claim this long after now (spec.lifecycle.shutdownTime); 0: never")
	f.StringArrayVar(&co.labels, "label", nil, "label KEY=VALUE for the claim (repeatable)")
	addOutputFlag(cmd, &co.output, false)
	return cmd
}

// addOutputFlag adds -o; wide only where a table is printed.
func addOutputFlag(cmd *cobra.Command, out *string, wide bool) {
	formats := "json|yaml|name"
	if wide {
		formats = "wide|json|yaml|name"
	}
	cmd.Flags().StringVarP(out, "output", "o", "", "output format: "+formats)
}

func checkOutput(format string, wide bool) error {
	switch format {
	case outputDefault, outputJSON, outputYAML, outputName:
		return nil
	case outputWide:
		if wide {
			return nil
		}
	}
	return usageError("unknown output format %q", format)
}

// parseLabels turns KEY=VALUE flags into a map, refusing invalid keys and
// values before anything is sent.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(flags))
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageError("--label %q: want KEY=VALUE", kv)
		}
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return nil, usageError("--label %q: invalid key: %s", kv, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return nil, usageError("--label %q: invalid value: %s", kv, strings.Join(msgs, "; "))
		}
		out[k] = v
	}
	return out, nil
}

func (co *claimOptions) validate(name string) (map[string]string, error) {
	if co.pool == "" {
		return nil, usageError("--pool is required")
	}
	if msgs := validation.IsDNS1123Subdomain(co.pool); len(msgs) > 0 {
		return nil, usageError("--pool %q: %s", co.pool, strings.Join(msgs, "; "))
	}
	if name != "" {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			return nil, usageError("claim name %q: %s", name, strings.Join(msgs, "; "))
		}
	}
	if co.timeout <= 0 {
		return nil, usageError("--timeout must be positive, got %v", co.timeout)
	}
	if co.ttl < 0 {
		return nil, usageError("--ttl must not be negative, got %v", co.ttl)
	}
	if err := checkOutput(co.output, false); err != nil {
		return nil, err
	}
	return parseLabels(co.labels)
}

func (o *Options) runClaim(ctx context.Context, name string, co claimOptions) error {
	labels, err := co.validate(name)
	if err != nil {
		return err
	}
	c, sc, err := o.controlPlane()
	if err != nil {
		return err
	}
	opts := []sdk.CreateOption{sdk.WithLabels(labels), sdk.WithReadyTimeout(co.timeout)}
	if name != "" {
		opts = append(opts, sdk.WithClaimName(name))
	}
	if co.ttl > 0 {
		opts = append(opts, sdk.WithTTL(co.ttl))
	}
	if !co.wait {
		claim, err := sc.CreateClaim(ctx, co.pool, opts...)
		if err != nil {
			return err
		}
		if co.output == outputDefault {
			_, err = fmt.Fprintf(o.streams.Out, "%s/%s created\n", claimResource, claim.Name)
			return err
		}
		return printEntries(o.streams.Out, co.output, []Entry{entryFor(claim, nil)}, true, o.now())
	}

	start := o.now()
	sb, err := sc.Create(ctx, co.pool, opts...)
	if err != nil {
		return err
	}
	took := o.now().Sub(start)
	// Create has released its handle's claim to us: the claim stays.
	sb.Disconnect()
	if co.output == outputDefault {
		launch := sb.LaunchType()
		if launch == "" {
			launch = "unknown"
		}
		_, err = fmt.Fprintf(o.streams.Out, "%s/%s ready: sandbox %s (%s start, %.1fs)\n",
			claimResource, sb.ClaimName(), sb.SandboxName(), launch, took.Seconds())
		return err
	}
	e, err := o.entry(ctx, c, sb.Namespace(), sb.ClaimName())
	if err != nil {
		return err
	}
	secs := took.Seconds()
	e.ReadySeconds = &secs
	return printEntries(o.streams.Out, co.output, []Entry{e}, true, o.now())
}

// entry reads a claim and its Sandbox into an Entry.
func (o *Options) entry(ctx context.Context, c *clients, namespace, claimName string) (Entry, error) {
	claim, err := c.agents.ExtensionsV1beta1().SandboxClaims(namespace).Get(ctx, claimName, metav1.GetOptions{})
	if err != nil {
		return Entry{}, err
	}
	var sb *agentsv1beta1.Sandbox
	if n := claim.Status.SandboxStatus.Name; n != "" {
		sb, err = c.agents.AgentsV1beta1().Sandboxes(namespace).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			sb, err = nil, nil
		}
		if err != nil {
			return Entry{}, err
		}
	}
	return entryFor(claim, sb), nil
}

// claimNotFound makes a claim's NotFound say which claim and how to list
// them.
func claimNotFound(namespace, name string) error {
	return &ExitError{Code: ExitNotFound, Err: fmt.Errorf("sandboxclaim %q not found in namespace %q (kubectl sandbox ls lists them)", name, namespace)}
}
