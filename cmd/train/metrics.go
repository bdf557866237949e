package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"mnist/model"
)

// metricsFile is the -metrics-out document. It is a file for programs
// (notebooks, dashboards), so unlike the log it holds everything at once:
// the per-epoch history, the test result with its confusion matrix, and the
// settings that produced them.
type metricsFile struct {
	// Interrupted marks a run stopped by a signal: the history holds the
	// epochs finished before it, the test result the partial model.
	Interrupted  bool           `json:"interrupted"`
	Device       string         `json:"device"`
	Architecture string         `json:"architecture"`
	Flags        metricsFlags   `json:"flags"`
	Epochs       []metricsEpoch `json:"epochs"`
	TrainSeconds jsonFloat      `json:"train_seconds"`
	Test         metricsTest    `json:"test"`
}

// metricsFlags are the command-line settings and the fixed Adam
// hyperparameters, enough to rerun the experiment.
type metricsFlags struct {
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batch_size"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
	DataDir   string  `json:"data_dir"`
	GPU       int     `json:"gpu"`
	Beta1     float64 `json:"adam_beta1"`
	Beta2     float64 `json:"adam_beta2"`
	Epsilon   float64 `json:"adam_epsilon"`
}

type metricsEpoch struct {
	Epoch         int       `json:"epoch"`
	TrainLoss     jsonFloat `json:"train_loss"`
	TrainAccuracy jsonFloat `json:"train_accuracy"`
	Seconds       jsonFloat `json:"seconds"`
}

type metricsTest struct {
	Loss     jsonFloat `json:"loss"`
	Accuracy jsonFloat `json:"accuracy"`
	Images   int       `json:"images"`
	// ConfusionMatrix[label][predicted] counts test images.
	ConfusionMatrix [model.Classes][model.Classes]int `json:"confusion_matrix"`
	// ClassAccuracy[label] is the fraction of that label's images classified
	// right; null when the set has none (JSON has no NaN).
	ClassAccuracy [model.Classes]*float64 `json:"class_accuracy"`
	ClassImages   [model.Classes]int      `json:"class_images"`
}

// jsonFloat is a measured number in the metrics file: written as JSON
// writes a float64, except that NaN and ±Inf, which JSON has no way to
// write, become null (encoding/json would fail on them, and lose the whole
// file). A loss of null means the loss was not a finite number; the log's
// "evaluation" entry names which ("NaN", "+Inf").
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(x)
}

// metricsDoc gathers the report into the -metrics-out document.
func (r report) metricsDoc() metricsFile {
	doc := metricsFile{
		Interrupted:  r.partial,
		Device:       r.device,
		Architecture: model.Architecture,
		Flags: metricsFlags{
			Epochs:    r.cfg.Epochs,
			BatchSize: r.cfg.BatchSize,
			LR:        r.cfg.LearningRate,
			Seed:      r.cfg.Seed,
			DataDir:   r.dataDir,
			GPU:       r.gpu,
			Beta1:     r.cfg.Beta1,
			Beta2:     r.cfg.Beta2,
			Epsilon:   r.cfg.Epsilon,
		},
		// An empty list, not null, when no epoch finished.
		Epochs:       make([]metricsEpoch, 0, len(r.history)),
		TrainSeconds: jsonFloat(round(r.trainSeconds, 3)),
		Test: metricsTest{
			Loss:            jsonFloat(r.metrics.Loss),
			Accuracy:        jsonFloat(r.metrics.Accuracy),
			Images:          r.metrics.Images,
			ConfusionMatrix: r.metrics.Confusion,
		},
	}
	for _, e := range r.history {
		doc.Epochs = append(doc.Epochs, metricsEpoch{
			Epoch: e.Epoch, TrainLoss: jsonFloat(e.Loss), TrainAccuracy: jsonFloat(e.Accuracy), Seconds: jsonFloat(round(e.Seconds, 3)),
		})
	}
	acc, count := r.metrics.Confusion.ClassAccuracy()
	doc.Test.ClassImages = count
	for c, a := range acc {
		if !math.IsNaN(a) {
			doc.Test.ClassAccuracy[c] = &a
		}
	}
	return doc
}

// writeMetrics writes the -metrics-out document atomically.
func (r report) writeMetrics(path string) error {
	b, err := marshalMetrics(r.metricsDoc())
	if err != nil {
		return fmt.Errorf("write metrics %s: %w", path, err)
	}
	if err := writeOutputAtomic(path, b); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// marshalMetrics is indented JSON, but with each array of numbers on one
// line: the confusion matrix then reads as a 10×10 grid, not 110 lines.
// Arrows in the architecture stay "->" rather than \u003e.
func marshalMetrics(doc metricsFile) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	// An array holding only numbers and nulls, across the line breaks the
	// indentation put in it. No string can match, so collapsing a match
	// never changes a value. (Compiled here, not in a package variable: the
	// package keeps no global state.)
	numberArray := regexp.MustCompile(`\[(\s*(?:-?[0-9][0-9.eE+-]*|null)(?:,\s*(?:-?[0-9][0-9.eE+-]*|null))*\s*)\]`)
	space := regexp.MustCompile(`\s+`)
	return numberArray.ReplaceAllFunc(buf.Bytes(), func(m []byte) []byte {
		return bytes.ReplaceAll(space.ReplaceAll(m, nil), []byte(","), []byte(", "))
	}), nil
}

// writeOutputAtomic writes b to path through a temporary file in the same
// folder, synced and renamed over path, so a reader (or a crash) never sees
// a half-written file under the final name. The same folder matters: a
// rename is only atomic within one file system.
func writeOutputAtomic(path string, b []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create a temporary file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	// CreateTemp makes the file 0600; an output file is for the user's other
	// tools, so give it the usual 0644 (before umask, as os.WriteFile would).
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("set the mode of %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", f.Name(), path, err)
	}
	return nil
}

// checkOutputPath makes sure path can be written when training ends, so a
// typo in a folder name is a usage error now rather than a lost result
// after minutes of training. It creates and removes a temporary file in the
// folder, which is exactly what the final write needs.
func checkOutputPath(flagName, path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError{fmt.Sprintf("-%s %s: is a directory, want a file name", flagName, path)}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".train-write-check-*")
	if err != nil {
		return usageError{fmt.Sprintf("-%s %s: cannot write in folder %s: %v", flagName, path, dir, unwrapPathError(err))}
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("-%s: remove the write check %s: %w", flagName, name, err)
	}
	return nil
}

// unwrapPathError drops the temporary file's random name from the message:
// the user named the folder, not that file.
func unwrapPathError(err error) error {
	if pe := new(os.PathError); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkOutputs checks every output flag before training starts.
func checkOutputs(o options) error {
	if err := checkOutputPath("metrics-out", o.metricsOut); err != nil {
		return err
	}
	return checkOutputPath("plot", o.plotOut)
}

// writeOutputs writes the -metrics-out and -plot files, if asked for,
// each whatever became of the other; the error names every one that
// failed.
func (r report) writeOutputs(o options) error {
	var errs []error
	if o.metricsOut != "" {
		errs = append(errs, r.writeMetrics(o.metricsOut))
	}
	if o.plotOut != "" {
		errs = append(errs, r.writePlot(o.plotOut))
	}
	return joinErrors(errs...)
}

// joinErrors is errors.Join on one line: the messages of the non-nil
// errors separated by "; ", nil when there are none. The program's errors
// are one line each, and so is a list of them.
func joinErrors(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return oneLineErrors(kept)
}

type oneLineErrors []error

func (e oneLineErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e oneLineErrors) Unwrap() []error { return e }
