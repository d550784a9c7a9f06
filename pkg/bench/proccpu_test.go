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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseProcStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis: fields count after
	// the last ')'. utime 250 + stime 75 ticks.
	line := []byte("4242 (kube (api) x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 75 0 0 20 0 12 0 100 0 0")
	got, err := parseProcStatCPU(line)
	if err != nil || got != 3.25 {
		t.Errorf("parseProcStatCPU = %v, %v; want 3.25 s", got, err)
	}
	for _, bad := range []string{"4242 kube S 1", "4242 (kube) S 1 2 3", "4242 (kube) S 1 4242 4242 0 -1 4194560 9000 0 0 0 x 75 0"} {
		if _, err := parseProcStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseProcStatCPU(%q) accepted a malformed line", bad)
		}
	}
}

// The bench reads itself and every PID file of the directory whose process
// is alive; a PID file of a process that is gone is left out.
func TestProcessesCPUSeconds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("kube-apiserver.pid", strconv.Itoa(os.Getpid())+"\n")
	write("etcd.pid", "2147483646\n") // no such process
	write("notes.txt", "not a PID file")
	got, err := (&Processes{Dir: dir}).CPUSeconds()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[benchProcess]; !ok {
		t.Errorf("no CPU for the bench itself: %v", got)
	}
	if _, ok := got["kube-apiserver"]; !ok {
		t.Errorf("no CPU for a live PID file's process: %v", got)
	}
	if _, ok := got["etcd"]; ok || len(got) != 2 {
		t.Errorf("CPU read for a process that is gone, or for a file that is no PID file: %v", got)
	}
	write("kwok.pid", "kwok\n")
	if _, err := (&Processes{Dir: dir}).CPUSeconds(); err == nil {
		t.Error("a PID file without a PID was accepted")
	}
}

// A steady run's report lines give the rtt under its load with the warm
// p50 in multiples of it, and the machine's CPU per claim, largest process
// first, with the total over all of them, and how often a claim woke each
// of the controller's reconcilers.
func TestUnderLoadLines(t *testing.T) {
	var b strings.Builder
	underLoad(&b, []*SteadyResult{
		{Rate: 10, LoadedRTT: &Summary{N: 60, P50Ms: 8, P99Ms: 20}, ClaimStats: ClaimStats{
			WarmLatency: Summary{N: 300, P50Ms: 30},
			ProcessCPUMsPerClaim: map[string]float64{
				"etcd": 4, "kube-apiserver": 30, "agent-sandbox-controller": 16, "kwok": 4,
			},
			PassesPerClaim: map[string]float64{"sandboxwarmpool": 1, "sandbox": 8.94, "sandboxclaim": 2.27},
		}},
		{Rate: 25}, // not measured: no line
	})
	want := "\n10/s: rtt under the run's load p50 8.00 ms, p99 20.00 ms (60 round trips while the claims were sent): warm p50 = **3.8 ×** it.\n" +
		"\n10/s: CPU per claim incl. the refill, every process on the machine: **54.0 ms** " +
		"(kube-apiserver 30.0 ms, agent-sandbox-controller 16.0 ms, etcd 4.0 ms, kwok 4.0 ms).\n" +
		"\n10/s: the controller's passes per claim incl. the refill: sandbox 8.94, sandboxclaim 2.27, sandboxwarmpool 1.00.\n"
	if got := b.String(); got != want {
		t.Errorf("underLoad wrote\n%q\nwant\n%q", got, want)
	}
}
