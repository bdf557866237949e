package main

import (
	"fmt"
	"io"
	"math"

	"github.com/sirupsen/logrus"

	"mnist/model"
)

// report is the final result. Its JSON log entry (msg "evaluation") is read
// by scripts and benchmarks: keep the field names stable.
type report struct {
	metrics      model.Metrics
	trainSeconds float64
	trainImages  int
	epochsDone   int
	cfg          model.Config
	device       string
	partial      bool // training was interrupted; the model is as it stood
}

func (r report) samplesPerSecond() float64 {
	if r.trainSeconds <= 0 {
		return 0
	}
	return float64(r.trainImages) / r.trainSeconds
}

func (r report) log(log *logrus.Logger) {
	fields := logrus.Fields{
		"test_accuracy":      r.metrics.Accuracy,
		"test_loss":          r.metrics.Loss,
		"test_images":        r.metrics.Images,
		"train_seconds":      round(r.trainSeconds, 3),
		"samples_per_second": round(r.samplesPerSecond(), 1),
		"epochs":             r.epochsDone,
		"batch_size":         r.cfg.BatchSize,
		"lr":                 r.cfg.LearningRate,
		"seed":               r.cfg.Seed,
		"device":             r.device,
	}
	if r.partial {
		fields["interrupted"] = true
	}
	log.WithFields(fields).Info("evaluation")
}

func (r report) print(w io.Writer) {
	title := "Test results"
	if r.partial {
		title = "Test results (training interrupted: partial model)"
	}
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintf(w, "  accuracy  %.2f%%  (%d images)\n", 100*r.metrics.Accuracy, r.metrics.Images)
	fmt.Fprintf(w, "  loss      %.4f\n", r.metrics.Loss)
	fmt.Fprintf(w, "  training  %d epochs in %.1f s, %.0f images/s\n", r.epochsDone, r.trainSeconds, r.samplesPerSecond())
	fmt.Fprintf(w, "  setup     batch %d, lr %g, seed %d, device %s\n", r.cfg.BatchSize, r.cfg.LearningRate, r.cfg.Seed, r.device)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
