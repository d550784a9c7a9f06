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
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1beta1 "github.com/agentsandbox/agent-sandbox/pkg/apis/agents/v1beta1"
)

func idleSandbox(rv string, annotations map[string]string) *agentsv1beta1.Sandbox {
	return &agentsv1beta1.Sandbox{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: rv, Annotations: annotations,
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: rv}}}}
}

func TestOnlyActivityChanged(t *testing.T) {
	const la, it = agentsv1beta1.LastActivityAnnotation, agentsv1beta1.IdleTimeoutAnnotation
	base := idleSandbox("1", map[string]string{it: "1m"})
	withA := idleSandbox("2", map[string]string{it: "1m", la: "2026-01-01T00:00:00Z"})
	nextA := idleSandbox("3", map[string]string{it: "1m", la: "2026-01-01T00:01:00Z"})
	statusToo := nextA.DeepCopy()
	statusToo.Status.PodIPs = []string{"127.0.0.9"}
	otherAnno := idleSandbox("3", map[string]string{it: "2m", la: "2026-01-01T00:01:00Z"})
	for _, tc := range []struct {
		name     string
		old, new *agentsv1beta1.Sandbox
		want     bool
	}{
		{"first write adds last-activity", base, withA, true},
		{"a window later", withA, nextA, true},
		{"status changed too", withA, statusToo, false},
		{"another annotation changed too", withA, otherAnno, false},
		{"last-activity unchanged", withA, func() *agentsv1beta1.Sandbox { c := withA.DeepCopy(); c.ResourceVersion = "9"; return c }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyActivityChanged(tc.old, tc.new); got != tc.want {
				t.Errorf("onlyActivityChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestActivityCounterCountsOnlyOnceStarted(t *testing.T) {
	const la = agentsv1beta1.LastActivityAnnotation
	a := idleSandbox("1", nil)
	b := idleSandbox("2", map[string]string{la: "2026-01-01T00:00:00Z"})
	c := b.DeepCopy()
	c.ResourceVersion, c.Labels = "3", map[string]string{"x": "y"}
	var n activityCounter
	n.observe(a, b)
	n.start()
	n.observe(a, b)
	n.observe(b, c)
	if w, o := n.counts(); w != 1 || o != 1 {
		t.Errorf("counts = %d activity, %d other; want 1, 1", w, o)
	}
}

func TestIdleResultFigures(t *testing.T) {
	r := &IdleResult{Sandboxes: 50, WindowSeconds: 60, Windows: 2, ActivityWrites: 100,
		Attempts:  map[string]float64{"written": 100, "conflict": 97, "error": 1},
		QueueAdds: map[string]float64{"sandbox": 103, "sandboxclaim": 0}}
	if got := r.WritesPerSandboxWindow(); got != 1 {
		t.Errorf("per sandbox per window = %v, want 1", got)
	}
	if got := r.WritesPerSecond(); got != 0.833 {
		t.Errorf("writes/s = %v, want 0.833 (100 over 120 s, to 3 places)", got)
	}
	if got := r.WritesPerSecondAt(1000, 15*time.Minute); got != 1000.0/900 {
		t.Errorf("scaled = %v, want %v", got, 1000.0/900)
	}
	if got := r.FailedAttempts(); got != 98 {
		t.Errorf("failed attempts = %v, want 98", got)
	}
	if got := r.SyncsCaused(); got == nil || *got != 3 {
		t.Errorf("syncs caused = %v, want 3 (103 adds less 100 idle timer re-reads)", got)
	}
	r.QueueAdds = nil
	if got := r.SyncsCaused(); got != nil {
		t.Errorf("syncs caused without controller metrics = %v, want nil", *got)
	}
}

func TestIdleTargets(t *testing.T) {
	find := func(ts []Target, prefix string) Target {
		for _, tg := range ts {
			if strings.HasPrefix(tg.Goal, prefix) {
				return tg
			}
		}
		t.Fatalf("no target %q in %v", prefix, ts)
		return Target{}
	}
	const writes, syncs = "idle tracking: ≤", "idle tracking: 0 controller syncs"
	r := &Report{}
	if tg := find(r.idleTargets(), writes); tg.Pass != nil {
		t.Errorf("without the scenario: %+v, want not measured", tg)
	}
	for _, tc := range []struct {
		name             string
		writes, other    int
		adds             float64
		wantW, wantSyncs bool
	}{
		{"one write per window, timer re-reads only", 20, 0, 20, true, true},
		{"a second write in a window", 21, 0, 20, false, true},
		{"no write at all", 0, 0, 20, false, true},
		{"the routers changed something else", 20, 1, 20, false, true},
		{"writes caused syncs", 20, 0, 40, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Idle: &IdleResult{Sandboxes: 10, WindowSeconds: 60, Windows: 2, ActivityWrites: tc.writes, OtherUpdates: tc.other,
				QueueAdds: map[string]float64{"sandbox": tc.adds}}}
			ts := r.idleTargets()
			if tg := find(ts, writes); tg.Pass == nil || *tg.Pass != tc.wantW {
				t.Errorf("writes target %+v, want pass %v", tg, tc.wantW)
			}
			if tg := find(ts, syncs); tg.Pass == nil || *tg.Pass != tc.wantSyncs {
				t.Errorf("syncs target %+v, want pass %v", tg, tc.wantSyncs)
			}
			var b strings.Builder
			idleSection(&b, r.Idle)
			if !strings.Contains(b.String(), "| per sandbox per window | **") {
				t.Errorf("section lacks the per-window figure:\n%s", b.String())
			}
		})
	}
}

func TestIdleSpecValidate(t *testing.T) {
	ok := IdleSpec{Sandboxes: 1, Window: time.Minute, Windows: 1, Interval: 5 * time.Second}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid spec: %v", err)
	}
	for name, mut := range map[string]func(*IdleSpec){
		"W under the API minimum": func(s *IdleSpec) { s.Window = 30 * time.Second },
		"interval near W":         func(s *IdleSpec) { s.Interval = 40 * time.Second },
		"no windows":              func(s *IdleSpec) { s.Windows = 0 },
	} {
		s := ok
		mut(&s)
		if s.Validate() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
