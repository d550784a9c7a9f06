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
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
	extensionsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/extensions/v1beta1"
)

// onClaimCreate names generateName claims as the API server would, and
// lets bind play the controllers on the stored claim.
func (f *fixture) onClaimCreate(bind func(c *extensionsv1beta1.SandboxClaim)) {
	f.agents.PrependReactor("create", "sandboxclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c := a.(k8stesting.CreateAction).GetObject().(*extensionsv1beta1.SandboxClaim)
		if c.Name == "" {
			c.Name = c.GenerateName + "abcde"
		}
		if bind != nil {
			bind(c)
		}
		return false, nil, nil
	})
}

func (f *fixture) claim(name string) *extensionsv1beta1.SandboxClaim {
	f.t.Helper()
	obj, err := f.agents.Tracker().Get(extensionsv1beta1.SandboxClaimsResource, "ns", name)
	if err != nil {
		f.t.Fatalf("getting claim %s: %v", name, err)
	}
	return obj.(*extensionsv1beta1.SandboxClaim)
}

func TestClaimWithoutWait(t *testing.T) {
	f := newFixture(t)
	f.onClaimCreate(nil)
	if code := f.run("claim", "mine", "--pool", "python", "--label", "team=ml", "--label", "tier=dev", "--ttl", "30m"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	if got, want := f.out.String(), claimResource+"/mine created\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	c := f.claim("mine")
	wantLabels := map[string]string{"team": "ml", "tier": "dev", agentsv1beta1.CreatedByLabel: agentsv1beta1.CreatedByGoClient}
	if d := cmp.Diff(wantLabels, c.Labels); d != "" {
		t.Errorf("labels (-want,+got):\n%s", d)
	}
	if c.Spec.WarmPoolRef.Name != "python" {
		t.Errorf("pool %q, want python", c.Spec.WarmPoolRef.Name)
	}
	if lc := c.Spec.Lifecycle; lc == nil || lc.ShutdownTime == nil || time.Until(lc.ShutdownTime.Time) <= 29*time.Minute {
		t.Errorf("lifecycle %+v: want a shutdownTime about 30m ahead", lc)
	}

	// Without NAME the claim is generated; -o name prints it for scripts.
	if code := f.run("claim", "--pool", "python", "-o", "name"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	if got, want := f.out.String(), claimResource+"/sandbox-claim-abcde\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	// A second claim of the same name is refused by the API server.
	if code := f.run("claim", "mine", "--pool", "python"); code != ExitFailure || !strings.Contains(f.errOut.String(), "already exists") {
		t.Errorf("duplicate claim: exit code %d, stderr %q", code, f.errOut.String())
	}
}

func TestClaimWait(t *testing.T) {
	f := newFixture(t)
	// The controllers bind at once: a warm sandbox, Ready.
	f.onClaimCreate(func(c *extensionsv1beta1.SandboxClaim) {
		c.CreationTimestamp.Time = testNow
		c.Status.SandboxStatus = extensionsv1beta1.SandboxStatus{Name: "python-" + c.Name, PodIPs: []string{"127.0.0.11"}}
		f.seed(readySandbox("python-" + c.Name))
	})
	if code := f.run("claim", "mine", "--pool", "python", "--wait"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	// The fixed clock makes the time taken 0.0s.
	if got, want := f.out.String(), claimResource+"/mine ready: sandbox python-mine (warm start, 0.0s)\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if code := f.run("claim", "second", "--pool", "python", "--wait", "-o", "json"); code != ExitOK {
		t.Fatalf("exit code %d: %s", code, f.errOut.String())
	}
	golden(t, "claim-wait.json.golden", f.out.String())
}

func TestClaimWaitTimeoutDeletesClaim(t *testing.T) {
	f := newFixture(t)
	f.onClaimCreate(nil) // nobody binds
	if code := f.run("claim", "mine", "--pool", "python", "--wait", "--timeout", "100ms"); code != ExitTimeout {
		t.Fatalf("exit code %d, want %d: %s", code, ExitTimeout, f.errOut.String())
	}
	if !strings.Contains(f.errOut.String(), "timed out waiting for claim ns/mine to be bound") {
		t.Errorf("stderr %q", f.errOut.String())
	}
	if _, err := f.agents.Tracker().Get(extensionsv1beta1.SandboxClaimsResource, "ns", "mine"); !apierrors.IsNotFound(err) {
		t.Errorf("claim after a failed --wait: %v, want it deleted", err)
	}
}

func TestSuspendResume(t *testing.T) {
	f := newFixture(t, claimObj("ready", "python", "python-x7k2p", time.Minute, "127.0.0.11"),
		readySandbox("python-x7k2p"))
	mode := func() agentsv1beta1.SandboxOperatingMode {
		obj, err := f.agents.Tracker().Get(agentsv1beta1.SandboxesResource, "ns", "python-x7k2p")
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*agentsv1beta1.Sandbox).Spec.OperatingMode
	}
	if code := f.run("suspend", "ready"); code != ExitOK {
		t.Fatalf("suspend: exit code %d: %s", code, f.errOut.String())
	}
	if got, want := f.out.String(), claimResource+"/ready suspended (sandbox python-x7k2p)\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if m := mode(); m != agentsv1beta1.SandboxOperatingModeSuspended {
		t.Errorf("operatingMode %q after suspend", m)
	}
	if code := f.run("resume", "ready", "-o", "name"); code != ExitOK {
		t.Fatalf("resume: exit code %d: %s", code, f.errOut.String())
	}
	if got, want := f.out.String(), claimResource+"/ready\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if m := mode(); m != agentsv1beta1.SandboxOperatingModeRunning {
		t.Errorf("operatingMode %q after resume", m)
	}
}

func TestLifecycleErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"suspend missing claim": {[]string{"suspend", "missing"}, ExitNotFound, `sandboxclaim "missing" not found in namespace "ns"`},
		"resume missing claim":  {[]string{"resume", "missing"}, ExitNotFound, `sandboxclaim "missing" not found in namespace "ns"`},
		"suspend gone sandbox":  {[]string{"suspend", "orphan"}, ExitNotFound, "sandbox gone not found"},
		"suspend unbound claim": {[]string{"suspend", "unbound"}, ExitFailure, "claim is not bound to a sandbox"},
		"release missing claim": {[]string{"release", "missing"}, ExitNotFound, `sandboxclaim "missing" not found in namespace "ns"`},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, claimObj("orphan", "python", "gone", time.Minute), claimObj("unbound", "python", "", time.Minute))
			if code := f.run(tc.args...); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if got := f.errOut.String(); !strings.Contains(got, tc.stderr) {
				t.Errorf("stderr %q, want %q in it", got, tc.stderr)
			}
		})
	}
}

func TestReleaseSeveral(t *testing.T) {
	f := newFixture(t, claimObj("a", "python", "", time.Minute), claimObj("b", "python", "", time.Minute))
	// Every name is tried; the first failure sets the exit code.
	if code := f.run("release", "a", "missing", "b"); code != ExitNotFound {
		t.Errorf("exit code %d, want %d", code, ExitNotFound)
	}
	if got, want := f.out.String(), claimResource+"/a released\n"+claimResource+"/b released\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := f.errOut.String(), "error: sandboxclaim \"missing\" not found in namespace \"ns\" (kubectl sandbox ls lists them)\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := f.agents.Tracker().Get(extensionsv1beta1.SandboxClaimsResource, "ns", n); !apierrors.IsNotFound(err) {
			t.Errorf("claim %s: %v, want deleted", n, err)
		}
	}
}
