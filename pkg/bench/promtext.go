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
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Sample is one series of a Prometheus counter or gauge.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// ParseMetric extracts the samples of one metric family from a Prometheus
// text exposition. It is a small parser on purpose: the bench must not add
// a dependency, and counters and gauges need nothing beyond
// `name{k="v",...} value [timestamp]`.
func ParseMetric(text []byte, name string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			// Another metric sharing the prefix (name_bucket, name_sum).
			continue
		}
		labels := map[string]string{}
		if rest[0] == '{' {
			var err error
			labels, rest, err = parseLabels(rest[1:])
			if err != nil {
				return nil, fmt.Errorf("parsing %s: %w", line, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("parsing %s: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", line, err)
		}
		out = append(out, Sample{Labels: labels, Value: v})
	}
	return out, sc.Err()
}

// parseLabels reads `k="v",k2="v2"}` and returns the labels and the text
// after the closing brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return nil, "", fmt.Errorf("unterminated labels")
		}
		if s[0] == '}' {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("malformed label at %q", s)
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s = s[i+1:]
				closed = true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", fmt.Errorf("unterminated label value for %s", key)
		}
		labels[key] = val.String()
	}
}

// SumBy adds up the samples grouped by the values of keys joined with " ",
// e.g. SumBy(s, "method") for rest_client_requests_total by method.
func SumBy(samples []Sample, keys ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range samples {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = s.Labels[k]
		}
		out[strings.Join(parts, " ")] += s.Value
	}
	return out
}

// DiffCounters returns after - before per key, keeping only keys that
// grew. A key that shrank means the process restarted and its counter began
// again at zero, so its whole after value is the growth.
func DiffCounters(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, a := range after {
		d := a - before[k]
		if d < 0 {
			d = a
		}
		if d > 0 {
			out[k] = d
		}
	}
	return out
}

// Total sums the values of m.
func Total(m map[string]float64) float64 {
	var t float64
	for _, k := range slices.Sorted(maps.Keys(m)) {
		t += m[k]
	}
	return t
}

// writeVerbs are the verbs that change state, in the spellings the
// apiserver (POST, PUT, PATCH, DELETE, APPLY, DELETECOLLECTION) and audit or
// RBAC (create, update, patch, delete) use; compared case-insensitively.
var writeVerbs = map[string]bool{
	"post": true, "put": true, "patch": true, "delete": true, "apply": true, "deletecollection": true,
	"create": true, "update": true,
}

// IsWriteVerb reports whether verb changes state.
func IsWriteVerb(verb string) bool { return writeVerbs[strings.ToLower(verb)] }

// APIWriteKey names one row of the apiserver's write table: the resource
// qualified by its group as kubectl spells it (sandboxes.agents.x-k8s.io),
// its subresource after a slash, and the verb in upper case. The group
// tells core events (controllers' recorders) from events.k8s.io ones (the
// scheduler's).
func APIWriteKey(group, resource, subresource, verb string) string {
	r := resource
	if group != "" {
		r += "." + group
	}
	if subresource != "" {
		r += "/" + subresource
	}
	return r + " " + strings.ToUpper(verb)
}

// APIServerWrites reduces apiserver_request_total samples to write counts
// by APIWriteKey. Requests the server rejected count too: a 409 conflict
// costs the server as much as a success, and retries are part of a
// controller's price.
func APIServerWrites(samples []Sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range samples {
		if !IsWriteVerb(s.Labels["verb"]) {
			continue
		}
		out[APIWriteKey(s.Labels["group"], s.Labels["resource"], s.Labels["subresource"], s.Labels["verb"])] += s.Value
	}
	return out
}

// ParseAPIServerWrites parses an apiserver /metrics text into write counts.
func ParseAPIServerWrites(text []byte) (map[string]float64, error) {
	samples, err := ParseMetric(text, "apiserver_request_total")
	if err != nil {
		return nil, err
	}
	return APIServerWrites(samples), nil
}

// APIServerWriteTimes are the apiserver's own time for write requests,
// by APIWriteKey: the sum and count of apiserver_request_duration_seconds
// (admission, webhooks and the etcd commit included, the network to the
// client not).
type APIServerWriteTimes struct {
	Seconds map[string]float64
	Count   map[string]float64
}

// ParseAPIServerWriteTimes parses an apiserver /metrics text into the
// server time of writes.
func ParseAPIServerWriteTimes(text []byte) (APIServerWriteTimes, error) {
	sum, err := ParseMetric(text, "apiserver_request_duration_seconds_sum")
	if err != nil {
		return APIServerWriteTimes{}, err
	}
	count, err := ParseMetric(text, "apiserver_request_duration_seconds_count")
	if err != nil {
		return APIServerWriteTimes{}, err
	}
	return APIServerWriteTimes{Seconds: APIServerWrites(sum), Count: APIServerWrites(count)}, nil
}

// MeanMsSince is the mean server time in milliseconds of each write key
// between two readings; keys with no request in between are left out.
func (t APIServerWriteTimes) MeanMsSince(before APIServerWriteTimes) map[string]float64 {
	sec, n := DiffCounters(before.Seconds, t.Seconds), DiffCounters(before.Count, t.Count)
	out := map[string]float64{}
	for k, c := range n {
		if c > 0 {
			out[k] = round3(sec[k] / c * 1000)
		}
	}
	return out
}
