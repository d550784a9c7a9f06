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

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RunInfo opens the chaos and soak reports.
type RunInfo struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Cluster  Cluster   `json:"cluster"`
	Notes    []string  `json:"notes,omitempty"`
}

// header writes the title, when and where the run was, and the notes.
func (ri RunInfo) header(b *strings.Builder, title string) {
	fmt.Fprintf(b, "# %s\n\nRun %s → %s (%s) against %s (%s, %d nodes).\n", title, ri.Started.UTC().Format(time.RFC3339), ri.Finished.UTC().Format("15:04:05Z"),
		ri.Finished.Sub(ri.Started).Round(time.Second), ri.Cluster.Server, ri.Cluster.ServerVersion, ri.Cluster.Nodes)
	for _, n := range ri.Notes {
		fmt.Fprintf(b, "\n%s\n", n)
	}
}

// harnessErrors lists what kept the harness from running its plan.
func harnessErrors(b *strings.Builder, errs []string) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n**Harness errors:**\n")
	for _, e := range errs {
		fmt.Fprintf(b, "- %s\n", e)
	}
}

// violationSection lists every violation, or says what none means.
func violationSection(b *strings.Builder, vs []Violation, none string) {
	fmt.Fprintf(b, "\n## Violations\n\n")
	if len(vs) == 0 {
		fmt.Fprintf(b, "%s\n", none)
	}
	for _, v := range vs {
		fmt.Fprintf(b, "- %s at %.2fs: %s\n", v.Rule, v.At.Seconds(), v.Detail)
	}
}

// writeJSONAndMarkdown puts report.json and report.md into dir.
func writeJSONAndMarkdown(dir string, v any, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644)
}

// Write puts report.json and report.md into dir.
func (r *ChaosResult) Write(dir string) error {
	return writeJSONAndMarkdown(dir, r, r.Markdown())
}

// Markdown renders the chaos report: verdict, load, faults with their
// recovery, then every violation with the objects it names.
func (r *ChaosResult) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	s := r.Spec
	r.header(&b, "sandbox-bench chaos report")
	p("")
	p("**Verdict: %s** — %d violations, %d harness errors.", yesNo(r.Failed(), "FAIL", "PASS"), len(r.Violations), len(r.Errors))
	p("")
	p("Load: %d claims at %g/s over %d warm pools of %d (template with one pause container); each claim deleted %g–%gs after the watch showed it Ready, or unserved %gs after its create request if it never was. Phases %s; controller SIGKILL every %s (single replica, no leader election), leader SIGKILL every %s (two replicas on a Lease), kube-apiserver SIGKILL+restart every %s, etcd every %s (0s: off); restarts after a random 0–%s. Seed %d.",
		s.Claims, s.Rate, s.Pools, s.PoolSize, s.MinLifeSeconds, s.MaxLifeSeconds, s.MaxWaitSeconds, s.Phases, s.KillEvery, s.LeaderKillEvery, s.APIServerEvery, s.EtcdEvery, s.RestartDelayMax, s.Seed)
	harnessErrors(&b, r.Errors)
	c := r.Claims
	p("")
	p("## Claims")
	p("")
	p("| attempted | created | refused | served (seen Ready) | deleted | delete retries | alive at the end |")
	p("|---|---|---|---|---|---|---|")
	p("| %d | %d | %d | %d | %d | %d | %d |", c.Attempted, c.Created, c.CreateErrors, c.Served, c.Deleted, c.DeleteErrors, c.LeftAtEnd)
	if c.Served < c.Created {
		p("")
		p("The %d created claims not served were not Ready within the longest wait and were deleted unserved.", c.Created-c.Served)
	}
	p("")
	latencyTable(&b, []string{"create → Ready"}, []Summary{c.Latency})
	p("")
	p("## Faults")
	p("")
	p("Recovery: from the kill to the first Ready of a claim whose create request was sent after it. Faults closer together than their recovery share the claim that recovers them.")
	p("")
	p("| kind | injected | recovered | recovery p50 s | p90 s | max s |")
	p("|---|---|---|---|---|---|")
	total := 0
	for _, f := range r.FaultsByKind {
		total += f.Count
		p("| %s | %d | %d | %.2f | %.2f | %.2f |", f.Kind, f.Count, f.Recovered, f.RecoveryP50Sec, f.RecoveryP90Sec, f.RecoveryMaxSec)
	}
	p("| all | %d | | | | |", total)
	if len(r.ControllerExits) > 0 {
		p("")
		p("%d controller exits nobody injected (the harness started each again within 250ms):", len(r.ControllerExits))
		p("")
		for _, e := range r.ControllerExits {
			p("- %s at %.1fs (mode %s)", e.Replica, e.AtSeconds, e.Mode)
		}
	}
	if len(r.ComponentExits) > 0 {
		p("")
		p("%d control-plane processes exited on their own and were started again, as a kubelet restarts a static Pod (kube-scheduler exits when it finds its cache corrupted, which an API server restart can cause):", len(r.ComponentExits))
		p("")
		for _, e := range r.ComponentExits {
			p("- %s at %.1fs; its last log line: `%s`", e.Name, e.AtSeconds, e.LastLog)
		}
	}
	p("")
	p("Control plane processes (kube-controller-manager, the scheduler and kwok must run at the end, in the process they started as unless listed above):")
	p("")
	p("| component | pid at start | pid at end | running at end |")
	p("|---|---|---|---|")
	for _, cl := range r.Components {
		p("| %s | %d | %d | %v |", cl.Name, cl.StartPID, cl.EndPID, cl.RunningEnd)
	}
	violationSection(&b, r.Violations, "None: no claim bound to two Sandboxes, no Sandbox controlled by two claims, no pool above its replicas in any state the watch went through; after the load every claim Ready, every pool back to its replicas, no Sandbox, Pod, Service or PVC without a live owner.")
	return b.String()
}
