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
	"sort"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

type listOptions struct {
	allNamespaces bool
	selector      string
	output        string
}

func newListCommand(o *Options) *cobra.Command {
	var lo listOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List sandbox claims and their sandboxes",
		Long: `List the SandboxClaims of the namespace with their sandboxes: the pool,
the bound sandbox, its state (Pending, Ready, NotReady, Suspending, Suspended,
Terminating), whether it came warm from the pool or was created cold, its
node, Pod IP and age. Sandboxes that no claim holds (warm pool members,
Sandboxes created directly) are not listed: kubectl get sandboxes shows them.

` + exitCodesHelp,
		Example: `  kubectl sandbox ls
  kubectl sandbox ls -A -o wide
  kubectl sandbox ls -l team=ml -o name`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runList(cmd.Context(), lo)
		},
	}
	cmd.Flags().BoolVarP(&lo.allNamespaces, "all-namespaces", "A", false, "list the claims of every namespace")
	cmd.Flags().StringVarP(&lo.selector, "selector", "l", "", "label selector on the claims")
	addOutputFlag(cmd, &lo.output, true)
	return cmd
}

func (o *Options) runList(ctx context.Context, lo listOptions) error {
	if err := checkOutput(lo.output, true); err != nil {
		return err
	}
	if _, err := metav1.ParseToLabelSelector(lo.selector); lo.selector != "" && err != nil {
		return usageError("--selector %q: %v", lo.selector, err)
	}
	c, err := o.newClients()
	if err != nil {
		return err
	}
	ns := c.namespace
	if lo.allNamespaces {
		ns = metav1.NamespaceAll
	}
	claims, err := c.agents.ExtensionsV1beta1().SandboxClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: lo.selector})
	if err != nil {
		return fmt.Errorf("listing sandbox claims: %w", err)
	}
	// One list of Sandboxes rather than a GET per claim.
	sandboxes, err := c.agents.AgentsV1beta1().Sandboxes(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing sandboxes: %w", err)
	}
	byName := make(map[string]*agentsv1beta1.Sandbox, len(sandboxes.Items))
	for i := range sandboxes.Items {
		sb := &sandboxes.Items[i]
		byName[sb.Namespace+"/"+sb.Name] = sb
	}
	entries := make([]Entry, 0, len(claims.Items))
	for i := range claims.Items {
		claim := &claims.Items[i]
		var sb *agentsv1beta1.Sandbox
		if n := claim.Status.SandboxStatus.Name; n != "" {
			sb = byName[claim.Namespace+"/"+n]
		}
		entries = append(entries, entryFor(claim, sb))
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Namespace != entries[j].Namespace {
			return entries[i].Namespace < entries[j].Namespace
		}
		return entries[i].Claim < entries[j].Claim
	})
	if len(entries) == 0 && (lo.output == outputDefault || lo.output == outputWide) {
		where := "namespace " + c.namespace
		if lo.allNamespaces {
			where = "any namespace"
		}
		_, err := fmt.Fprintf(o.streams.ErrOut, "No sandbox claims found in %s.\n", where)
		return err
	}
	return printEntriesIn(o.streams.Out, lo.output, entries, false, lo.allNamespaces, o.now())
}
