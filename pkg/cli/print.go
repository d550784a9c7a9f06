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
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// Output formats of -o. The default (empty) is a table or a sentence.
const (
	outputDefault = ""
	outputWide    = "wide"
	outputJSON    = "json"
	outputYAML    = "yaml"
	outputName    = "name"
)

// claimResource prefixes -o name output, as kubectl's -o name does, so the
// lines can be handed to kubectl itself.
const claimResource = "sandboxclaim.extensions.agents.x-k8s.io"

// States of an Entry.
const (
	StatePending     = "Pending"
	StateReady       = "Ready"
	StateNotReady    = "NotReady"
	StateSuspending  = "Suspending"
	StateSuspended   = "Suspended"
	StateTerminating = "Terminating"
)

// Entry is one claim with its sandbox: a row of ls, and what claim, -o json
// and -o yaml print. It is the plugin's own view, flattened for scripts;
// kubectl get sandboxclaims -o yaml gives the API objects.
type Entry struct {
	Namespace string `json:"namespace"`
	Claim     string `json:"claim"`
	Pool      string `json:"pool"`
	// Sandbox is the bound Sandbox's name (X-Sandbox-ID); empty until the
	// controller binds one.
	Sandbox string `json:"sandbox,omitempty"`
	State   string `json:"state"`
	// Reason is the claim's Ready reason, else the Sandbox's.
	Reason     string      `json:"reason,omitempty"`
	LaunchType string      `json:"launchType,omitempty"`
	Node       string      `json:"node,omitempty"`
	PodIPs     []string    `json:"podIPs,omitempty"`
	Created    metav1.Time `json:"created"`
	// ReadySeconds is how long claim --wait took, create to Ready.
	ReadySeconds *float64 `json:"readySeconds,omitempty"`
}

// entryFor flattens a claim and its Sandbox (nil when unbound or not
// found).
func entryFor(claim *extensionsv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) Entry {
	e := Entry{
		Namespace: claim.Namespace,
		Claim:     claim.Name,
		Pool:      claim.Spec.WarmPoolRef.Name,
		Sandbox:   claim.Status.SandboxStatus.Name,
		PodIPs:    claim.Status.SandboxStatus.PodIPs,
		Created:   claim.CreationTimestamp,
	}
	if c := apimeta.FindStatusCondition(claim.Status.Conditions, "Ready"); c != nil && c.Status != metav1.ConditionTrue {
		e.Reason = c.Reason
	}
	if sb != nil {
		e.LaunchType = sb.Labels[agentsv1beta1.LaunchTypeLabel]
		// The Sandbox is the source; the claim's copy is mirrored from it a
		// moment later (right after a suspend it still lists the IPs of the
		// Pod that is gone), so it is used only when the Sandbox is not read.
		e.Node = sb.Status.NodeName
		e.PodIPs = sb.Status.PodIPs
	}
	e.State = stateOf(claim, sb)
	if e.Reason == "" && sb != nil && e.State != StateReady {
		if c := apimeta.FindStatusCondition(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()); c != nil {
			e.Reason = c.Reason
		}
	}
	return e
}

func stateOf(claim *extensionsv1beta1.SandboxClaim, sb *agentsv1beta1.Sandbox) string {
	switch {
	case claim.DeletionTimestamp != nil:
		return StateTerminating
	case sb == nil:
		return StatePending
	case sb.Spec.OperatingMode == agentsv1beta1.SandboxOperatingModeSuspended:
		if apimeta.IsStatusConditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionSuspended.String()) {
			return StateSuspended
		}
		return StateSuspending
	case apimeta.IsStatusConditionTrue(sb.Status.Conditions, agentsv1beta1.SandboxConditionReady.String()):
		return StateReady
	}
	return StateNotReady
}

// printEntries writes entries in format. A single is printed as one
// object by json and yaml; a list as {"items": [...]}.
func printEntries(w io.Writer, format string, entries []Entry, single bool, now time.Time) error {
	return printEntriesIn(w, format, entries, single, false, now)
}

// printEntriesIn is printEntries with a NAMESPACE column in front, as
// kubectl get -A prints it.
func printEntriesIn(w io.Writer, format string, entries []Entry, single, namespaces bool, now time.Time) error {
	switch format {
	case outputJSON, outputYAML:
		var v any = struct {
			Items []Entry `json:"items"`
		}{Items: entries}
		if single && len(entries) == 1 {
			v = entries[0]
		}
		return printObject(w, format, v)
	case outputName:
		for i := range entries {
			if _, err := fmt.Fprintf(w, "%s/%s\n", claimResource, entries[i].Claim); err != nil {
				return err
			}
		}
		return nil
	}
	return printTable(w, entries, format == outputWide, namespaces, now)
}

// printObject writes v as indented JSON or as YAML.
func printObject(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	b = escapeJSONControls(b)
	if format == outputJSON {
		b = append(b, '\n')
	} else if b, err = yaml.JSONToYAML(b); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// escapeJSONControls rewrites DEL and the C1 controls (U+007F-U+009F),
// which encoding/json leaves raw inside strings, as \u escapes: the same
// string to a JSON reader, but no 8-bit CSI for a terminal to act on,
// and valid input for the YAML parser, which refuses raw control
// characters (a hostile file name would otherwise fail -o yaml). Outside
// strings JSON has only ASCII, so every such rune is inside a string.
func escapeJSONControls(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for _, r := range string(b) {
		if r >= 0x7f && r <= 0x9f {
			out = fmt.Appendf(out, `\u%04x`, r)
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// printTable writes kubectl get's layout: upper-case headers, columns
// three spaces apart, <none> for an empty cell.
func printTable(w io.Writer, entries []Entry, wide, namespaces bool, now time.Time) error {
	tw := newTabWriter(w)
	headers := []string{"NAME", "POOL", "SANDBOX", "STATE", "LAUNCH", "NODE", "IP", "AGE"}
	if namespaces {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	if wide {
		headers = append(headers, "REASON")
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for n := range entries {
		e := &entries[n]
		ip := ""
		if len(e.PodIPs) > 0 {
			ip = strings.Join(e.PodIPs, ",")
		}
		cells := []string{e.Claim, e.Pool, e.Sandbox, e.State, e.LaunchType, e.Node, ip, age(e.Created, now)}
		if namespaces {
			cells = append([]string{e.Namespace}, cells...)
		}
		if wide {
			cells = append(cells, e.Reason)
		}
		for i, c := range cells {
			if c == "" {
				cells[i] = "<none>"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// newTabWriter is kubectl's table writer (printers.GetNewTabWriter).
func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
}

// age renders a creation time the way kubectl's AGE column does.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}
