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
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// wellFormed decodes every token of doc, which fails on any XML error.
func wellFormed(t *testing.T, doc []byte) (root string, elements map[string]int) {
	t.Helper()
	elements = map[string]int{}
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return root, elements
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elements[se.Name.Local]++
		}
	}
}

func TestChartWriteSVG(t *testing.T) {
	tests := map[string]Chart{
		"cdf with escapes": {
			Title: `Claims <burst> & "warm"`, XLabel: "latency (ms)", YLabel: "fraction", YMax: 1,
			Series: []Series{
				{Name: "warm <&>", Points: CDF([]float64{3, 5, 8, 13}), Step: true},
				{Name: "cold", Points: CDF([]float64{40, 80})},
			},
		},
		"no data":   {Title: "empty"},
		"one point": {Series: []Series{{Name: "x", Points: []Point{{X: 0, Y: 0}}}}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.WriteSVG(&b); err != nil {
				t.Fatal(err)
			}
			root, el := wellFormed(t, b.Bytes())
			if root != "svg" {
				t.Errorf("root element %q, want svg", root)
			}
			if el["polyline"] != countWithPoints(c.Series) {
				t.Errorf("%d polylines, want %d", el["polyline"], countWithPoints(c.Series))
			}
			if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
				t.Errorf("non-finite coordinates:\n%s", b.String())
			}
		})
	}
}

func countWithPoints(ss []Series) int {
	n := 0
	for _, s := range ss {
		if len(s.Points) > 0 {
			n++
		}
	}
	return n
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.7: 1, 1: 1, 1.2: 2, 2.2: 2.5, 3: 5, 7: 10, 300: 500, 1001: 2000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestReportWrite(t *testing.T) {
	dir := t.TempDir()
	r := &Report{
		RTT:    &RTTResult{N: 3, Latency: Summary{N: 3, P50Ms: 3}},
		RS:     &FillResult{Size: 10, FillSeconds: 1, Curve: []Point{{0, 0}, {1, 10}}},
		Pool:   &FillResult{Size: 10, FillSeconds: 1.1, MaxMembers: 10, Curve: []Point{{0, 0}, {1.1, 10}}},
		Claims: &ClaimsResult{PoolFill: &FillResult{Size: 5}, ClaimStats: ClaimStats{Pool: 5, Claims: 2, Created: 2}, CDF: CDF([]float64{5, 9})},
		Steady: []*SteadyResult{{Rate: 10, Buckets: []Bucket{{Second: 0, Count: 1, P50Ms: 4, P99Ms: 4}}, CDF: CDF([]float64{4})}},
	}
	r.Evaluate()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{plotFill, plotClaimsCDF, plotSteadyCDF, plotSteadyLatency} {
		var b bytes.Buffer
		if err := r.charts()[name].WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		wellFormed(t, b.Bytes())
	}
	md := r.Markdown(r.charts())
	for _, want := range []string{"## Targets of issues #9 and #19", "pool fill ≤ 1.2 × ReplicaSet fill", "PASS", "![fill curves](fill.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}
