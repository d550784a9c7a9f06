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
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want,+got):\n%s", path, d)
	}
}

// listObjects is one claim in every state ls distinguishes.
func listObjects() []runtime.Object {
	suspended := sandboxObj("sb-suspended", "cold", "", "",
		readyCond(agentsv1beta1.SandboxConditionReady, metav1.ConditionFalse, agentsv1beta1.SandboxReasonSuspended),
		readyCond(agentsv1beta1.SandboxConditionSuspended, metav1.ConditionTrue, agentsv1beta1.SandboxReasonPodTerminated))
	suspended.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	suspending := sandboxObj("sb-suspending", "warm", "node-2", "127.0.0.12",
		readyCond(agentsv1beta1.SandboxConditionSuspended, metav1.ConditionFalse, agentsv1beta1.SandboxReasonPodTerminating))
	suspending.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	notReady := sandboxObj("sb-starting", "cold", "node-1", "",
		readyCond(agentsv1beta1.SandboxConditionReady, metav1.ConditionFalse, agentsv1beta1.SandboxReasonDependenciesNotReady))
	pending := claimObj("pending", "missing-pool", "", 90*time.Second)
	pending.Status.Conditions = []metav1.Condition{readyCond("Ready", metav1.ConditionFalse, "WarmPoolNotFound")}
	terminating := claimObj("terminating", "python", "sb-gone", 3*time.Hour)
	terminating.DeletionTimestamp = &metav1.Time{Time: testNow}
	terminating.Finalizers = []string{"example.com/hold"}
	return []runtime.Object{
		claimObj("ready", "python", "python-x7k2p", 5*time.Minute, "127.0.0.11"),
		readySandbox("python-x7k2p"),
		claimObj("suspended", "python", "sb-suspended", 26*time.Hour),
		suspended,
		claimObj("suspending", "python", "sb-suspending", 40*time.Minute),
		suspending,
		claimObj("starting", "python", "sb-starting", 10*time.Second),
		notReady,
		pending,
		terminating,
	}
}

func TestListOutputFormats(t *testing.T) {
	for _, format := range []string{"", "wide", "json", "yaml", "name"} {
		t.Run("format="+format, func(t *testing.T) {
			f := newFixture(t, listObjects()...)
			args := []string{"ls"}
			if format != "" {
				args = append(args, "-o", format)
			}
			if code := f.run(args...); code != ExitOK {
				t.Fatalf("exit code %d: %s", code, f.errOut.String())
			}
			name := "ls-" + format
			if format == "" {
				name = "ls-table"
			}
			golden(t, name+".golden", f.out.String())
		})
	}
}

func TestListEmpty(t *testing.T) {
	f := newFixture(t)
	if code := f.run("ls"); code != ExitOK {
		t.Fatalf("exit code %d", code)
	}
	if f.out.Len() != 0 || f.errOut.String() != "No sandbox claims found in namespace ns.\n" {
		t.Errorf("stdout %q stderr %q", f.out.String(), f.errOut.String())
	}
	// Scripts asking for JSON get an empty list, not a sentence.
	if code := f.run("ls", "-o", "json"); code != ExitOK || f.out.String() != "{\n    \"items\": []\n}\n" {
		t.Errorf("exit code %d, stdout %q", code, f.out.String())
	}
}

func TestListSelectorAndNamespace(t *testing.T) {
	labelled := claimObj("labelled", "python", "", time.Minute)
	labelled.Labels = map[string]string{"team": "ml"}
	other := claimObj("elsewhere", "python", "", time.Minute)
	other.Namespace = "other"
	f := newFixture(t, labelled, claimObj("plain", "python", "", time.Minute), other)
	if code := f.run("ls", "-l", "team=ml", "-o", "name"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	if got, want := f.out.String(), claimResource+"/labelled\n"; got != want {
		t.Errorf("-l team=ml: %q, want %q", got, want)
	}
	if code := f.run("ls", "-A"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	golden(t, "ls-all-namespaces.golden", f.out.String())
}

// Right after a suspend the claim still mirrors the IPs of the Pod that is
// gone; the Sandbox, which the claim copies, no longer lists any. ls shows
// the Sandbox's (and the claim's only when the Sandbox is not read).
func TestEntryTakesPodIPsFromTheSandbox(t *testing.T) {
	claim := &extensionsv1beta1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "task"}}
	claim.Status.SandboxStatus = extensionsv1beta1.SandboxStatus{Name: "sb", PodIPs: []string{"127.100.0.1"}}
	sb := &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sb"}}
	sb.Spec.OperatingMode = agentsv1beta1.SandboxOperatingModeSuspended
	sb.Status.Conditions = []metav1.Condition{{Type: "Suspended", Status: metav1.ConditionTrue, Reason: "PodTerminated"}}
	if e := entryFor(claim, sb); len(e.PodIPs) != 0 || e.State != StateSuspended {
		t.Errorf("suspended sandbox: state %s, IPs %v; want Suspended and none", e.State, e.PodIPs)
	}
	if e := entryFor(claim, nil); len(e.PodIPs) != 1 {
		t.Errorf("sandbox not read: IPs %v, want the claim's", e.PodIPs)
	}
}
