package main

import (
	"fmt"
	"io"
	"math"

	"github.com/sirupsen/logrus"

	"mnist/data/fileio"
	"mnist/model"
)

// report is the final result. Its JSON log entry (msg "evaluation") is read
// by scripts and benchmarks: keep the field names stable.
type report struct {
	metrics      model.Metrics
	trainSeconds float64
	trainImages  int
	epochsDone   int // in all, those before a -resume included
	resumedAfter int // epochs finished before this run (-resume), else 0
	cfg          model.Config
	device       string
	partial      bool // training was interrupted; the model is as it stood
	// evaluation: the run only scored the -load model, and took no
	// training flags; cfg's optimizer and seed are those that trained
	// the file, or unknown (trainingUnknown) when it does not say.
	evaluation, trainingUnknown bool
	// For -metrics-out and -plot: the finished epochs and the settings not
	// in cfg.
	history []model.EpochStats
	dataDir string
	gpu     int
	engine  string
	// files writes -metrics-out and -plot; the zero value is the real file
	// system, tests set a fileio.Fault to make a step fail.
	files fileio.Writer
}

func (r report) samplesPerSecond() float64 {
	if r.trainSeconds <= 0 {
		return 0
	}
	return float64(r.trainImages) / r.trainSeconds
}

// log writes the "evaluation" entry, whatever -log-level (resultLogger).
func (r report) log(log *logrus.Logger) {
	fields := logrus.Fields{
		"test_accuracy":      logNumber(r.metrics.Accuracy),
		"test_loss":          logNumber(r.metrics.Loss),
		"test_images":        r.metrics.Images,
		"train_seconds":      round(r.trainSeconds, 3),
		"samples_per_second": round(r.samplesPerSecond(), 1),
		"epochs":             r.epochsDone,
		"batch_size":         r.cfg.BatchSize,
		"device":             r.device,
		// Ten numbers stay readable on one line; the 10×10 confusion
		// matrix does not, and goes to -metrics-out and the text report.
		"test_class_accuracy": r.classAccuracyField(),
	}
	if !r.trainingUnknown {
		fields["optimizer"] = r.cfg.Optimizer.Name
		fields["lr"] = r.cfg.Optimizer.LearningRate
		fields["seed"] = r.cfg.Seed
	}
	if r.partial {
		fields["interrupted"] = true
	}
	if r.resumedAfter > 0 {
		fields["resumed_after_epoch"] = r.resumedAfter
	}
	resultLogger(log).WithFields(fields).Info("evaluation")
}

func (r report) print(w io.Writer) {
	title := "Test results"
	if r.partial {
		title = "Test results (training interrupted: partial model)"
	}
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintf(w, "  accuracy  %.2f%%  (%d images)\n", 100*r.metrics.Accuracy, r.metrics.Images)
	fmt.Fprintf(w, "  loss      %.4f\n", r.metrics.Loss)
	if line := r.trainingLine(); line != "" {
		fmt.Fprintf(w, "  training  %s\n", line)
	}
	if r.resumedAfter > 0 {
		fmt.Fprintf(w, "  resumed   after epoch %d; the time is this run's\n", r.resumedAfter)
	}
	fmt.Fprintf(w, "  setup     %s\n", r.setupLine())
	fmt.Fprintln(w)
	printConfusion(w, &r.metrics.Confusion)
}

// setupLine is "batch 32, adam lr 0.001, seed 1, device cpu", for the text
// report and the plot's title: for an evaluation of a -load model, the
// settings that trained it, or none when its file does not say.
func (r report) setupLine() string {
	if r.trainingUnknown {
		return fmt.Sprintf("batch %d, device %s (training settings not in the model file)", r.cfg.BatchSize, r.device)
	}
	return fmt.Sprintf("batch %d, %s lr %g, seed %d, device %s", r.cfg.BatchSize, r.cfg.Optimizer.Name, r.cfg.Optimizer.LearningRate, r.cfg.Seed, r.device)
}

// trainingLine says how much this run trained: "5 epochs in 16.3 s,
// 18445 images/s", "interrupted after 1 epoch in 4.2 s, ..." (the epochs
// finished before the signal, those before a -resume included),
// "interrupted after 2 epochs" for a mid-epoch checkpoint only evaluated,
// and "" when it trained nothing, as in an evaluation of a -load model.
func (r report) trainingLine() string {
	if r.trainImages == 0 && !r.partial {
		return ""
	}
	s := plural(r.epochsDone, "epoch")
	if r.trainImages > 0 {
		s += fmt.Sprintf(" in %.1f s, %.0f images/s", r.trainSeconds, r.samplesPerSecond())
	}
	if r.partial {
		s = "interrupted after " + s
	}
	return s
}

// plural is "1 epoch", "2 epochs", "0 epochs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// logNumber is x as a log field: the number itself when finite, else its
// name as a string ("NaN", "+Inf", "-Inf"), which JSON, having no such
// numbers, can carry and a text log prints the same. (logrus's JSON
// formatter fails on a NaN field and drops the whole entry.)
func logNumber(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Sprint(x)
	}
	return x
}

// classAccuracyField is the per-class test accuracy for the log, rounded to
// 4 digits like a percentage with two decimals; a class without test images
// is nil, null in JSON (which has no NaN). The elements are values, not
// pointers, so the text log prints numbers too.
func (r report) classAccuracyField() []any {
	acc, _ := r.metrics.Confusion.ClassAccuracy()
	out := make([]any, len(acc))
	for c, a := range acc {
		if !math.IsNaN(a) {
			out[c] = round(a, 4)
		}
	}
	return out
}

// printConfusion prints the confusion matrix with the per-class accuracy
// as a last column, e.g.
//
//	Confusion matrix (rows: true digit, columns: predicted)
//	          0    1    2    3    4    5    6    7    8    9   accuracy
//	   0    970    0    1    1    0    2    3    1    2    0    98.98%
//
// Columns are as wide as the largest count needs, so the matrix stays
// aligned for any set size.
func printConfusion(w io.Writer, c *model.Confusion) {
	width := 4
	for _, row := range c {
		for _, v := range row {
			width = max(width, len(fmt.Sprint(v))+1)
		}
	}
	acc, _ := c.ClassAccuracy()
	fmt.Fprintln(w, "Confusion matrix (rows: true digit, columns: predicted)")
	fmt.Fprintf(w, "%6s", "")
	for p := range c[0] {
		fmt.Fprintf(w, "%*d", width, p)
	}
	fmt.Fprintf(w, "  %9s\n", "accuracy")
	for label, row := range c {
		fmt.Fprintf(w, "%6d", label)
		for _, v := range row {
			fmt.Fprintf(w, "%*d", width, v)
		}
		if math.IsNaN(acc[label]) {
			fmt.Fprintf(w, "  %9s\n", "-")
		} else {
			fmt.Fprintf(w, "  %8.2f%%\n", 100*acc[label])
		}
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
