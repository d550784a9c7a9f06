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
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture's ABI (sysconf(_SC_CLK_TCK) needs cgo).
const userHZ = 100

// benchProcess names the bench's own process among the others.
const benchProcess = "sandbox-bench"

// Processes reads the CPU time of the processes on this machine that share
// it with the controller: the control plane's, whose PID files are in Dir
// (<name>.pid, the PID on the first line, as test/localcluster writes
// them), and the bench itself. On two cores shared by all of them, a claim's
// latency is set as much by their CPU as by the controller's.
type Processes struct {
	Dir string
}

// CPUSeconds returns each process's user plus system CPU time. A PID file
// whose process is gone is left out (the window's difference then leaves
// it out too).
func (p *Processes) CPUSeconds() (map[string]float64, error) {
	out := map[string]float64{}
	self, err := readProcCPU("/proc/self/stat")
	if err != nil {
		return nil, err
	}
	out[benchProcess] = self
	files, err := filepath.Glob(filepath.Join(p.Dir, "*.pid"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue // removed by a component that stopped
		}
		first, _, _ := bytes.Cut(raw, []byte("\n"))
		pid, err := strconv.Atoi(strings.TrimSpace(string(first)))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("PID file %s: %q is not a PID", f, first)
		}
		sec, err := readProcCPU("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = sec
	}
	return out, nil
}

// readProcCPU is utime + stime of a /proc/PID/stat file, in seconds.
func readProcCPU(path string) (float64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(raw)
}

// parseProcStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields are counted after the
// last closing one.
func parseProcStatCPU(raw []byte) (float64, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat %q", raw)
	}
	fields := strings.Fields(string(raw[i+1:]))
	// fields[0] is field 3 (state): utime is field 14, stime 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc stat %q", raw)
	}
	var ticks float64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat %q: %w", raw, err)
		}
		ticks += float64(v)
	}
	return ticks / userHZ, nil
}
