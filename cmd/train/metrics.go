package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"mnist/data/fileio"
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

// metricsFlags are the command-line settings and the optimizer's
// hyperparameters, enough to rerun the experiment. An evaluation
// (-epochs 0 -load) takes no optimizer or seed, so it records none: the
// log and the report name those that trained the file.
type metricsFlags struct {
	Epochs    int    `json:"epochs"`
	BatchSize int    `json:"batch_size"`
	Optimizer string `json:"optimizer,omitempty"`
	// OptimizerSettings are the optimizer's hyperparameters by name, the
	// learning rate ("lr") among them.
	OptimizerSettings map[string]float64 `json:"optimizer_settings,omitempty"`
	Seed              *uint64            `json:"seed,omitempty"`
	DataDir           string             `json:"data_dir"`
	GPU               int                `json:"gpu"`
	Engine            string             `json:"engine"`
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
			DataDir:   r.dataDir,
			GPU:       r.gpu,
			Engine:    r.engine,
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
	if !r.evaluation {
		seed := r.cfg.Seed
		doc.Flags.Optimizer, doc.Flags.Seed = r.cfg.Optimizer.Name, &seed
		doc.Flags.OptimizerSettings = map[string]float64{}
		for _, s := range r.cfg.Optimizer.Settings() {
			doc.Flags.OptimizerSettings[s.Name] = s.Value
		}
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

// writeMetrics writes the -metrics-out document atomically (fileio).
func (r report) writeMetrics(path string) error {
	b, err := marshalMetrics(r.metricsDoc())
	if err != nil {
		return fmt.Errorf("write metrics %s: %w", path, err)
	}
	if err := r.files.WriteFile(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
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
	return numberArray.ReplaceAllFunc(buf.Bytes(), func(m []byte) []byte {
		return bytes.ReplaceAll(whiteSpace.ReplaceAll(m, nil), []byte(","), []byte(", "))
	}), nil
}

// numberArray matches a JSON array holding only numbers and nulls, across
// the line breaks indentation put in it. No string can match, so collapsing
// a match never changes a value.
var numberArray = regexp.MustCompile(`\[(\s*(?:-?[0-9][0-9.eE+-]*|null)(?:,\s*(?:-?[0-9][0-9.eE+-]*|null))*\s*)\]`)

var whiteSpace = regexp.MustCompile(`\s+`)

// outputFlags are the flags naming files the run writes, in the order
// they are checked.
func outputFlags(o options) []struct{ flag, path string } {
	return []struct{ flag, path string }{
		{"save", o.savePath},
		{"metrics-out", o.metricsOut},
		{"plot", o.plotOut},
	}
}

// checkOutputs checks every output flag before anything is loaded or
// trained, so that a typo in a folder name, or an output that is a folder,
// a device or a FIFO, is a usage error now rather than a lost result after
// minutes of training (see fileio.CheckTarget). Two outputs naming the same
// file are refused too: one would silently overwrite the other. So are
// -metrics-out and -plot naming the -load model, which they would destroy
// (-save may replace it: that is saving the model trained from it), and
// any output inside -checkpoint-dir, whose files the run writes and prunes.
func checkOutputs(o options) error {
	outs := outputFlags(o)
	for i, out := range outs {
		if out.path == "" {
			continue
		}
		for _, earlier := range outs[:i] {
			if earlier.path != "" && fileio.SamePath(earlier.path, out.path) {
				return usageError{fmt.Sprintf("-%s %s and -%s %s are the same file: give each output its own", earlier.flag, earlier.path, out.flag, out.path)}
			}
		}
		if out.flag != "save" && o.loadPath != "" && fileio.SamePath(o.loadPath, out.path) {
			return usageError{fmt.Sprintf("-%s %s is the -load model %s: writing it would destroy the model; name another file", out.flag, out.path, o.loadPath)}
		}
		if o.checkpointDir != "" && insideFolder(out.path, o.checkpointDir) {
			return usageError{fmt.Sprintf("-%s %s is inside -checkpoint-dir %s: keep outputs out of the checkpoint folder", out.flag, out.path, o.checkpointDir)}
		}
		if err := fileio.CheckTarget(out.path); err != nil {
			return usageError{fmt.Sprintf("-%s: %v", out.flag, err)}
		}
	}
	return nil
}

// insideFolder says whether the file path lies in folder or in a folder
// below it, comparing each folder above path with folder as
// fileio.SamePath does (cleaned, absolute, symlinks resolved).
func insideFolder(path, folder string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if fileio.SamePath(dir, folder) {
			return true
		}
		if dir == filepath.Dir(dir) {
			return false
		}
	}
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
