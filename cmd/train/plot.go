package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The -plot picture: 8×6 inches at 100 dpi, 800×600 pixels, a size that
// reads well on screen and in a README.
const (
	plotDPI          = 100
	plotWidthInches  = 8
	plotHeightInches = 6
	plotWidthPixels  = plotWidthInches * plotDPI
	plotHeightPixels = plotHeightInches * plotDPI
)

// Colours of the two series, the same in both panels so one legend key
// means the same thing everywhere.
func trainColor() color.Color { return color.RGBA{R: 31, G: 119, B: 180, A: 255} }
func testColor() color.Color  { return color.RGBA{R: 214, G: 39, B: 40, A: 255} }

// writePlot draws the training loss and accuracy per epoch, each in its own
// panel with the test result of the final model as a separate point, and
// writes the PNG atomically.
func (r report) writePlot(path string) error {
	img, err := r.renderPlot()
	if err != nil {
		return fmt.Errorf("draw plot %s: %w", path, err)
	}
	if err := r.files.WriteFile(path, func(w io.Writer) error { _, err := w.Write(img); return err }); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// renderPlot returns the PNG bytes.
func (r report) renderPlot() ([]byte, error) {
	loss, acc, err := r.plots()
	if err != nil {
		return nil, err
	}
	c := vgimg.NewWith(
		vgimg.UseWH(plotWidthInches*vg.Inch, plotHeightInches*vg.Inch),
		vgimg.UseDPI(plotDPI),
		vgimg.UseBackgroundColor(color.White),
	)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{loss}, {acc}}, tiles, dc)
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[1][0])

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// plots builds the two panels: loss above, accuracy below, one legend (in
// the loss panel, whose top right the falling curve leaves empty) for
// both, since the series are the same. A value that is not a finite number
// (a diverged epoch, an overflowed loss) cannot be placed on an axis: it
// is left out, and the legend says so for the test result.
func (r report) plots() (loss, acc *plot.Plot, err error) {
	// The test point sits at the last finished epoch, counting those
	// before a -resume: that is the model it scores (plus, for an
	// interrupted run, part of the next epoch). With no finished epoch it
	// sits at 0, the untrained (or loaded) model, alone on the axis.
	testX := float64(r.epochsDone)
	firstX := testX
	if len(r.history) > 0 {
		firstX = float64(r.history[0].Epoch)
	}
	lastX := math.Max(testX, firstX)

	loss = plot.New()
	title := "MNIST MLP: " + r.setupLine()
	if r.partial {
		title += " (interrupted)"
	}
	loss.Title.Text = title
	loss.Y.Label.Text = "loss (cross-entropy)"
	acc = plot.New()
	acc.X.Label.Text = "epoch"
	acc.Y.Label.Text = "accuracy (%)"

	var trainLoss, trainAcc plotter.XYs
	for _, e := range r.history {
		trainLoss = appendFinite(trainLoss, float64(e.Epoch), e.Loss)
		trainAcc = appendFinite(trainAcc, float64(e.Epoch), 100*e.Accuracy)
	}
	if err := addSeries(loss, trainLoss, appendFinite(nil, testX, r.metrics.Loss)); err != nil {
		return nil, nil, err
	}
	if err := addSeries(acc, trainAcc, appendFinite(nil, testX, 100*r.metrics.Accuracy)); err != nil {
		return nil, nil, err
	}

	testName := fmt.Sprintf("test (%d images)", r.metrics.Images)
	if !isFinite(r.metrics.Loss) {
		testName += fmt.Sprintf(", loss %v not drawn", r.metrics.Loss)
	}
	if len(r.history) > 0 {
		loss.Legend.Add("training (mean over the epoch)", &plotter.Line{LineStyle: trainLine()}, &plotter.Scatter{GlyphStyle: trainGlyph()})
	}
	loss.Legend.Add(testName, &plotter.Scatter{GlyphStyle: testGlyph()})
	loss.Legend.Top, loss.Legend.Left = true, false
	// Clear of the frame and the grid's last line, and of each other.
	loss.Legend.XOffs, loss.Legend.YOffs = -3*vg.Millimeter, -2*vg.Millimeter
	loss.Legend.Padding = vg.Millimeter

	for _, p := range []*plot.Plot{loss, acc} {
		// A tenth of the data's range above and below keeps points off
		// the frame and leaves room for the legend; a lone value (an
		// evaluation's test point) gets a tenth of itself, and a panel
		// with no value (a loss that is not a number) shows 0 to 1.
		// Losses and accuracies are not negative, so the margin stops at
		// 0 unless a value is below it.
		lo, hi := p.Y.Min, p.Y.Max
		switch d := hi - lo; {
		case d > 0:
			p.Y.Min, p.Y.Max = lo-d/10, hi+d/10
		case d == 0:
			pad := math.Max(math.Abs(hi)/10, 0.01)
			p.Y.Min, p.Y.Max = lo-pad, hi+pad
		default:
			p.Y.Min, p.Y.Max = 0, 1
		}
		if lo >= 0 {
			p.Y.Min = math.Max(p.Y.Min, 0)
		}
		// Nor does an accuracy go past 100 %, unless that is the value
		// (kept off the frame).
		if p == acc && hi < 100 {
			p.Y.Max = math.Min(p.Y.Max, 100)
		}
		// Epochs are whole numbers; half an epoch of margin keeps the
		// first and last points off the frame.
		p.X.Min, p.X.Max = firstX-0.5, lastX+0.5
		p.X.Tick.Marker = epochTicks{}
		p.Y.Tick.Marker = valueTicks{}
		p.Add(plotter.NewGrid())
	}
	return loss, acc, nil
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// appendFinite appends (x, y) to xys unless y is NaN or infinite.
func appendFinite(xys plotter.XYs, x, y float64) plotter.XYs {
	if !isFinite(y) {
		return xys
	}
	return append(xys, plotter.XY{X: x, Y: y})
}

// The series' styles, the same in both panels and in the legend.
func trainLine() draw.LineStyle {
	return draw.LineStyle{Color: trainColor(), Width: vg.Points(1.5)}
}

func trainGlyph() draw.GlyphStyle {
	return draw.GlyphStyle{Color: trainColor(), Shape: draw.CircleGlyph{}, Radius: vg.Points(2.5)}
}

func testGlyph() draw.GlyphStyle {
	return draw.GlyphStyle{Color: testColor(), Shape: draw.BoxGlyph{}, Radius: vg.Points(4)}
}

// addSeries draws the training curve (line and points) and the test point,
// each when it has a point.
func addSeries(p *plot.Plot, train, test plotter.XYs) error {
	if len(train) > 0 {
		line, points, err := plotter.NewLinePoints(train)
		if err != nil {
			return fmt.Errorf("training curve: %w", err)
		}
		line.LineStyle = trainLine()
		points.GlyphStyle = trainGlyph()
		p.Add(line, points)
	}
	if len(test) > 0 {
		sc, err := plotter.NewScatter(test)
		if err != nil {
			return fmt.Errorf("test point: %w", err)
		}
		sc.GlyphStyle = testGlyph()
		p.Add(sc)
	}
	return nil
}

// valueTicks labels five to ten round values (steps of 1, 2, 2.5 or 5 times
// a power of ten) with a minor tick between each two: the default ticker
// labels only three, too few to read a value off.
type valueTicks struct{}

// minValueLabels is the fewest labels valueTicks gives: it takes the
// largest round step that still gives this many.
const minValueLabels = 5

func (valueTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !isFinite(hi-lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	count := func(step float64) int {
		return int(math.Floor(hi/step+1e-9) - math.Ceil(lo/step-1e-9) + 1)
	}
	mag := math.Pow(10, math.Floor(math.Log10((hi-lo)/minValueLabels)))
	step := mag / 10
	for _, s := range []float64{mag / 10, mag / 5, mag / 4, mag / 2, mag, 2 * mag, 2.5 * mag, 5 * mag, 10 * mag} {
		if count(s) >= minValueLabels {
			step = s
		}
	}
	// Enough decimals for the step: 0.025 needs three, 0.05 two.
	decimals := 0
	for d := step; decimals < 15 && math.Abs(d-math.Round(d)) > 1e-9*d; d *= 10 {
		decimals++
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/step - 1e-9)
	for i := 0; ; i++ {
		v := (first + float64(i)) * step
		if v > hi+step*1e-9 {
			break
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		if mid := v + step/2; mid <= hi {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	if mid := first*step - step/2; mid >= lo {
		ticks = append(ticks, plot.Tick{Value: mid})
	}
	return ticks
}

// epochTicks puts labelled ticks on whole epochs only, at most about ten of
// them: the default ticker would label epoch 1.5.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := math.Max(1, math.Ceil((hi-lo+1)/10))
	var ticks []plot.Tick
	for x := lo; x <= hi; x += step {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprintf("%.0f", positiveZero(x))})
	}
	return ticks
}

// positiveZero is x, with -0 (what rounding -0.5 up gives) as 0, so that no
// axis is labelled "-0".
func positiveZero(x float64) float64 {
	if x == 0 {
		return 0
	}
	return x
}
