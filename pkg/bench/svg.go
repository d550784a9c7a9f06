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
	"fmt"
	"io"
	"math"
	"strconv"
)

// Series is one named curve of a chart.
type Series struct {
	Name   string
	Points []Point
	// Step draws horizontal-then-vertical segments, right for CDFs and
	// counts that jump.
	Step bool
}

// Chart is a line chart with linear axes, written as SVG by hand so the
// bench needs no plotting dependency.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	Series []Series
	// YMax fixes the top of the y axis (1 for a CDF); 0 fits the data.
	YMax float64
}

const (
	svgW, svgH                      = 720, 420
	padL, padR, padT, padB          = 70, 180, 40, 50
	plotW, plotH                    = svgW - padL - padR, svgH - padT - padB
	svgTicks                        = 5
	svgFont                         = "font-family=\"sans-serif\" font-size=\"12\""
	svgAxisStyle                    = "stroke=\"#333\" stroke-width=\"1\""
	svgGridStyle                    = "stroke=\"#ddd\" stroke-width=\"1\""
	svgLineWidth                    = 2
	svgLegendRow, svgLegendSwatchPx = 18, 14
)

// palette is colour-blind safe (Okabe-Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"}

// WriteSVG renders c as a standalone SVG document.
func (c Chart) WriteSVG(w io.Writer) error {
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax, ymax = math.Min(xmin, p.X), math.Max(xmax, p.X), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	xmin = math.Min(xmin, 0)
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if c.YMax > 0 {
		ymax = c.YMax
	}
	if ymax <= 0 {
		ymax = 1
	}
	xmax, ymax = niceCeil(xmax), niceCeil(ymax)
	if c.YMax > 0 {
		ymax = c.YMax
	}
	sx := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	sy := func(y float64) float64 { return padT + plotH - y/ymax*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="22" %s font-weight="bold">%s</text>`+"\n", padL, svgFont, esc(c.Title))
	for i := 0; i <= svgTicks; i++ {
		xv := xmin + (xmax-xmin)*float64(i)/svgTicks
		yv := ymax * float64(i) / svgTicks
		x, y := sx(xv), sy(yv)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" %s/>`+"\n", x, padT, x, padT+plotH, svgGridStyle)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" %s/>`+"\n", padL, y, padL+plotW, y, svgGridStyle)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`+"\n", x, padT+plotH+16, svgFont, tick(xv))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`+"\n", padL-6, y+4, svgFont, tick(yv))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n", padL, padT+plotH, padL+plotW, padT+plotH, svgAxisStyle)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`+"\n", padL, padT, padL, padT+plotH, svgAxisStyle)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" %s>%s</text>`+"\n", padL+plotW/2, svgH-10, svgFont, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)" %s>%s</text>`+"\n", padT+plotH/2, padT+plotH/2, svgFont, esc(c.YLabel))

	for i, s := range c.Series {
		color := palette[i%len(palette)]
		if len(s.Points) > 0 {
			b.WriteString(`<polyline fill="none" stroke="` + color + `" stroke-width="` + strconv.Itoa(svgLineWidth) + `" points="`)
			prevY := 0.0
			for j, p := range s.Points {
				if s.Step && j > 0 {
					fmt.Fprintf(&b, "%.1f,%.1f ", sx(p.X), sy(prevY))
				}
				fmt.Fprintf(&b, "%.1f,%.1f ", sx(p.X), sy(p.Y))
				prevY = p.Y
			}
			b.WriteString(`"/>` + "\n")
		}
		ly := padT + 10 + i*svgLegendRow
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="4" fill="%s"/>`+"\n", padL+plotW+12, ly-2, svgLegendSwatchPx, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s>%s</text>`+"\n", padL+plotW+12+svgLegendSwatchPx+6, ly+4, svgFont, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, so tick
// labels are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
