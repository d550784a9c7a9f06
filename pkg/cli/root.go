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

// Package cli is kubectl-sandbox, the kubectl plugin for agent sandboxes:
// claim, list, run commands in and move files to and from sandboxes,
// suspend, resume and release them. Claims are managed through the
// Kubernetes API, runtime calls go through the sandbox router; both through
// pkg/sdk. See docs/cli.md.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clientset "github.com/agentsandbox/agent-sandbox/generated/clientset/versioned"
	"github.com/agentsandbox/agent-sandbox/pkg/sdk"
	"github.com/agentsandbox/agent-sandbox/pkg/version"
)

// userAgent names the plugin in the API server's and the router's logs.
const userAgent = "kubectl-sandbox"

// Environment variables that stand in for flags.
const (
	EnvRouterURL   = "KUBECTL_SANDBOX_ROUTER_URL"
	EnvRouterToken = "KUBECTL_SANDBOX_ROUTER_TOKEN"
)

// clients is what the verbs talk to; tests substitute fakes.
type clients struct {
	config    *rest.Config
	kube      kubernetes.Interface
	agents    clientset.Interface
	namespace string
}

// Options is the state shared by all verbs: kubectl's global flags, the
// router flags and the seams the tests replace.
type Options struct {
	streams     genericiooptions.IOStreams
	configFlags *genericclioptions.ConfigFlags
	router      routerFlags

	// newClients builds the API clients from the flags.
	newClients func() (*clients, error)
	// openRouter finds the router and returns its URL and a func that
	// closes what was opened for it (a port-forward).
	openRouter func(ctx context.Context, c *clients) (string, func(), error)
	// now is the clock of AGE columns and claim timings.
	now func() time.Time
	// getenv reads the environment variables above.
	getenv func(string) string
}

// NewOptions returns the Options of a real run.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	o := &Options{
		streams:     streams,
		configFlags: genericclioptions.NewConfigFlags(true),
		router:      defaultRouterFlags(),
		now:         time.Now,
		getenv:      os.Getenv,
	}
	o.newClients = o.buildClients
	o.openRouter = o.discoverRouter
	return o
}

func (o *Options) buildClients() (*clients, error) {
	cfg, err := o.configFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), userAgent)
	ns, _, err := o.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("resolving the namespace: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	agents, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{config: cfg, kube: kube, agents: agents, namespace: ns}, nil
}

// controlPlane returns the clients and an SDK client that manages claims
// only.
func (o *Options) controlPlane() (*clients, *sdk.Client, error) {
	c, err := o.newClients()
	if err != nil {
		return nil, nil, err
	}
	sc, err := sdk.NewClientForClientset(c.agents, sdk.WithControlPlaneOnly(),
		sdk.WithDefaultNamespace(c.namespace), sdk.WithUserAgent(userAgent))
	if err != nil {
		return nil, nil, err
	}
	return c, sc, nil
}

// NewCommand builds the kubectl-sandbox command tree.
func NewCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubectl-sandbox",
		Short: "Claim agent sandboxes, run commands and move files in them",
		Long: `kubectl sandbox manages agent sandboxes: it claims them from warm pools,
lists them, runs commands in them and copies files to and from them through
the sandbox router, and suspends, resumes and releases them.

NAME is always a SandboxClaim's name (what "kubectl sandbox claim" printed and
"kubectl sandbox ls" lists); the plugin resolves the claim's Sandbox itself.

` + exitCodesHelp,
		Annotations: map[string]string{
			// kubectl shows plugins as "kubectl sandbox" in help.
			cobra.CommandDisplayNameAnnotation: "kubectl sandbox",
		},
		Version:       version.Get().GitVersion,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(o.streams.In)
	cmd.SetOut(o.streams.Out)
	cmd.SetErr(o.streams.ErrOut)
	// Declared here so that cobra does not take -v for it: kubectl users
	// read -v as verbosity.
	cmd.Flags().Bool("version", false, "print the plugin's version")
	o.configFlags.AddFlags(cmd.PersistentFlags())
	o.router.addFlags(cmd.PersistentFlags())
	// cobra reports unknown flags and bad values through this hook; they
	// are usage errors.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	cmd.AddCommand(
		newClaimCommand(o),
		newListCommand(o),
		newExecCommand(o),
		newCopyCommand(o),
		newFilesCommand(o),
		newSuspendCommand(o),
		newResumeCommand(o),
		newReleaseCommand(o),
	)
	return cmd
}

// Run executes the plugin with args and returns the process exit code,
// having printed any error to the error stream.
func Run(ctx context.Context, o *Options, args []string) int {
	cmd := NewCommand(o)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	// cobra's own argument errors (unknown command, wrong count) carry
	// no code.
	var ee *ExitError
	if !errors.As(err, &ee) && isCobraUsageError(err) {
		code = ExitUsage
	}
	if ee == nil || ee.Err != nil {
		// Nowhere is left to report a failed write; the exit code still
		// tells the failure.
		_, _ = fmt.Fprintf(o.streams.ErrOut, "error: %s\n", displayMessage(err.Error()))
	}
	return code
}

// argsError wraps a cobra positional-args validator so that its failures
// are usage errors.
func argsError(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%w\nSee '%s --help'", err, cmd.CommandPath())}
		}
		return nil
	}
}

// isCobraUsageError recognises the errors cobra returns before running a
// verb: an unknown command.
func isCobraUsageError(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
