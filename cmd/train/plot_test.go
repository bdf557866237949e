package main

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// coloured says whether a pixel is a series colour (blue or red) rather
// than black, white or a grey of the frame, text and grid.
func coloured(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	spread := max(r, g, b) - min(r, g, b)
	return spread > 0x3000
}

// TestPlotLegend: one legend, in the loss panel, with its symbols clear of
// the frame's right edge (they used to touch it), and none in the accuracy
// panel.
func TestPlotLegend(t *testing.T) {
	r := testReport(5, false)
	r.metrics.Images, r.metrics.Accuracy, r.metrics.Loss = 10000, 0.9759, 0.0782
	loss, acc, err := r.plots()
	if err != nil {
		t.Fatal(err)
	}
	c := draw.New(vgimg.New(8*vg.Inch, 6*vg.Inch))
	if h := loss.Legend.Rectangle(c).Size().Y; h <= 0 {
		t.Errorf("loss panel legend height %v, want a legend", h)
	}
	if h := acc.Legend.Rectangle(c).Size().Y; h != 0 {
		t.Errorf("accuracy panel legend height %v, want none", h)
	}

	b, err := r.renderPlot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// The frame's right edge is 4 mm (16 pixels) from the picture's; the
	// legend must end at least 2 mm (8 pixels) before it.
	var legendPixels int
	for y := 0; y < plotHeightPixels/2; y++ {
		for x := plotWidthPixels - 24; x < plotWidthPixels; x++ {
			if coloured(img, x, y) {
				t.Fatalf("series colour at (%d, %d): the legend reaches the edge", x, y)
			}
		}
		for x := plotWidthPixels - 120; x < plotWidthPixels-24; x++ {
			if y < 100 && coloured(img, x, y) {
				legendPixels++
			}
		}
	}
	if legendPixels == 0 {
		t.Error("no legend symbols in the top right")
	}
}

// TestValueTicks: five to ten labelled round values over the range, in order,
// labelled with as many decimals as the step needs.
func TestValueTicks(t *testing.T) {
	cases := []struct {
		lo, hi  float64
		first   string // first label
		nLabels int
	}{
		{0.03, 0.33, "0.05", 6}, // steps of 0.05
		{88.99, 98.21, "90", 5}, // steps of 2
		{0.07, 0.11, "0.07", 5}, // steps of 0.01
		{0, 1, "0.00", 5},       // steps of 0.25
		{-3, 12, "-2.5", 6},     // steps of 2.5
	}
	for _, c := range cases {
		var labels []string
		var last float64 = math.Inf(-1)
		for _, tk := range (valueTicks{}).Ticks(c.lo, c.hi) {
			if tk.Value < c.lo-1e-9 || tk.Value > c.hi+1e-9 {
				t.Errorf("[%v, %v]: tick %v outside the range", c.lo, c.hi, tk.Value)
			}
			if tk.Label != "" {
				if tk.Value <= last {
					t.Errorf("[%v, %v]: labels out of order", c.lo, c.hi)
				}
				last = tk.Value
				labels = append(labels, tk.Label)
			}
		}
		if len(labels) != c.nLabels || labels[0] != c.first {
			t.Errorf("[%v, %v]: labels %v, want %d starting %s", c.lo, c.hi, labels, c.nLabels, c.first)
		}
	}
}

// TestPlotNonFinite: a loss that is not a number (an epoch that diverged,
// an overflowed test loss) is left off the chart, and the plot is still
// drawn.
func TestPlotNonFinite(t *testing.T) {
	for name, r := range map[string]report{
		"test loss +Inf":    func() report { r := testReport(3, false); r.metrics.Loss = math.Inf(1); return r }(),
		"epoch loss NaN":    func() report { r := testReport(3, true); r.history[2].Loss = math.NaN(); return r }(),
		"all NaN, no epoch": func() report { r := testReport(0, false); r.metrics.Loss = math.NaN(); return r }(),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := r.renderPlot()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPlotEvaluationOnly: an evaluation (-epochs 0) has one point per
// panel, at epoch 0. The axes frame it closely (the default pads a lone
// value by ±1, down to a loss of -0.8) and the epoch axis is labelled 0,
// not "-0".
func TestPlotEvaluationOnly(t *testing.T) {
	r := testReport(0, false)
	r.metrics.Images, r.metrics.Accuracy, r.metrics.Loss = 10000, 0.9401, 0.1868
	loss, acc, err := r.plots()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		p     *plot.Plot
		value float64
	}{{"loss", loss, 0.1868}, {"accuracy", acc, 94.01}} {
		if lo, hi := c.p.Y.Min, c.p.Y.Max; lo < 0 || lo >= c.value || hi <= c.value || hi-lo > c.value {
			t.Errorf("%s axis [%v, %v] does not frame the lone value %v closely, above zero", c.name, lo, hi, c.value)
		}
		if c.name == "accuracy" && c.p.Y.Max > 100 {
			t.Errorf("accuracy axis reaches %v%%", c.p.Y.Max)
		}
		var labels []string
		for _, tk := range c.p.X.Tick.Marker.Ticks(c.p.X.Min, c.p.X.Max) {
			labels = append(labels, tk.Label)
		}
		if len(labels) != 1 || labels[0] != "0" {
			t.Errorf("%s panel's epoch ticks %q, want only \"0\"", c.name, labels)
		}
	}
}

// TestPlotAxes: the value axes frame the data with a margin that stops at
// 0 (no loss or accuracy is below it) and at 100 % of accuracy, unless a
// value lies beyond; a panel with nothing to draw shows 0 to 1; the epoch
// axis of a resumed run starts at its first epoch of this run and ends at
// the last one, where the test point is.
func TestPlotAxes(t *testing.T) {
	type ranges struct{ lossMin, lossMax, accMin, accMax, epochMin, epochMax float64 }
	cases := []struct {
		name string
		edit func(r *report)
		// check returns what is wrong with the axes, or "".
		check func(g ranges) string
	}{
		{"loss near zero", func(r *report) { r.history[4].Loss = 0.001 }, func(g ranges) string {
			if g.lossMin != 0 {
				return "the loss axis does not start at 0"
			}
			return ""
		}},
		{"accuracy near 100 %", func(r *report) { r.history[4].Accuracy = 0.999 }, func(g ranges) string {
			if g.accMax != 100 {
				return "the accuracy axis does not end at 100"
			}
			return ""
		}},
		{"lone accuracy of 100 %", func(r *report) { *r = testReport(0, false); r.metrics.Accuracy = 1 }, func(g ranges) string {
			if !(g.accMin < 100 && g.accMax > 100) {
				return "100 % is not inside the accuracy axis"
			}
			return ""
		}},
		{"no loss to draw", func(r *report) { *r = testReport(0, false); r.metrics.Loss = math.NaN() }, func(g ranges) string {
			if g.lossMin != 0 || g.lossMax != 1 {
				return "the empty loss panel is not 0 to 1"
			}
			return ""
		}},
		{"negative loss", func(r *report) { *r = testReport(0, false); r.metrics.Loss = -5 }, func(g ranges) string {
			if !(g.lossMin < -5 && g.lossMax > -5) {
				return "-5 is not inside the loss axis"
			}
			return ""
		}},
		{"resumed after epoch 3", func(r *report) { r.history, r.resumedAfter = r.history[3:], 3 }, func(g ranges) string {
			if g.epochMin != 3.5 || g.epochMax != 5.5 {
				return "the epoch axis is not 3.5 to 5.5 (epochs 4 and 5)"
			}
			return ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testReport(5, false)
			c.edit(&r)
			loss, acc, err := r.plots()
			if err != nil {
				t.Fatal(err)
			}
			g := ranges{loss.Y.Min, loss.Y.Max, acc.Y.Min, acc.Y.Max, loss.X.Min, loss.X.Max}
			if msg := c.check(g); msg != "" {
				t.Errorf("%s: %+v", msg, g)
			}
		})
	}
}
