package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"

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
	// The test point sits at the last finished epoch: that is the model it
	// scores (plus, for an interrupted run, part of the next epoch). With no
	// finished epoch it sits at 0, the untrained (or loaded) model.
	testX := float64(len(r.history))
	firstX, lastX := math.Min(testX, 1), math.Max(testX, 1)

	loss := plot.New()
	title := fmt.Sprintf("MNIST MLP: batch %d, %s lr %g, seed %d, %s", r.cfg.BatchSize, r.cfg.Optimizer.Name, r.cfg.Optimizer.LearningRate, r.cfg.Seed, r.device)
	if r.partial {
		title += " (interrupted)"
	}
	loss.Title.Text = title
	loss.Y.Label.Text = "loss (cross-entropy)"
	acc := plot.New()
	acc.X.Label.Text = "epoch"
	acc.Y.Label.Text = "accuracy (%)"

	trainLoss := make(plotter.XYs, len(r.history))
	trainAcc := make(plotter.XYs, len(r.history))
	for i, e := range r.history {
		trainLoss[i] = plotter.XY{X: float64(e.Epoch), Y: e.Loss}
		trainAcc[i] = plotter.XY{X: float64(e.Epoch), Y: 100 * e.Accuracy}
	}
	testName := fmt.Sprintf("test (%d images)", r.metrics.Images)
	if err := addSeries(loss, trainLoss, plotter.XYs{{X: testX, Y: r.metrics.Loss}}, testName); err != nil {
		return nil, err
	}
	if err := addSeries(acc, trainAcc, plotter.XYs{{X: testX, Y: 100 * r.metrics.Accuracy}}, testName); err != nil {
		return nil, err
	}

	for _, p := range []*plot.Plot{loss, acc} {
		// A tenth of the data's range above and below keeps points off
		// the frame and leaves room for the legend.
		if d := p.Y.Max - p.Y.Min; d > 0 {
			p.Y.Min, p.Y.Max = p.Y.Min-d/10, p.Y.Max+d/10
		}
		// Epochs are whole numbers; half an epoch of margin keeps the
		// first and last points off the frame.
		p.X.Min, p.X.Max = firstX-0.5, lastX+0.5
		p.X.Tick.Marker = epochTicks{}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = false
	}
	// Loss falls and accuracy rises: keep each legend in the corner the
	// curve leaves empty.
	acc.Legend.Top = false

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

// addSeries adds the training curve (line and points, when any epoch
// finished) and the test point, with legend entries.
func addSeries(p *plot.Plot, train, test plotter.XYs, testName string) error {
	if len(train) > 0 {
		line, points, err := plotter.NewLinePoints(train)
		if err != nil {
			return fmt.Errorf("training curve: %w", err)
		}
		line.Color = trainColor()
		line.Width = vg.Points(1.5)
		points.Color = trainColor()
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add("training (mean over the epoch)", line, points)
	}
	sc, err := plotter.NewScatter(test)
	if err != nil {
		return fmt.Errorf("test point: %w", err)
	}
	sc.Color = testColor()
	sc.Shape = draw.BoxGlyph{}
	sc.Radius = vg.Points(4)
	p.Add(sc)
	p.Legend.Add(testName, sc)
	return nil
}

// epochTicks puts labelled ticks on whole epochs only, at most about ten of
// them: the default ticker would label epoch 1.5.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := math.Max(1, math.Ceil((hi-lo+1)/10))
	var ticks []plot.Tick
	for x := lo; x <= hi; x += step {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprintf("%.0f", x)})
	}
	return ticks
}
