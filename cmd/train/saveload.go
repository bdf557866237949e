package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"github.com/sirupsen/logrus"

	"mnist/data"
	"mnist/model"
)

// loadedModel is a -load file read and checked before anything slow
// starts, so that a bad file costs no data loading or device set-up.
type loadedModel struct {
	path   string
	params *model.Params
	meta   map[string]string
	// trainingUnknown: an evaluation of this file, which does not say how
	// it was trained, so the report names no optimizer or seed.
	trainingUnknown bool
}

// prepareSaveLoad runs before data loading and training: it reads the
// -load file (nil without -load), so that a bad file costs no data loading
// or device set-up. (The -save path is checked by checkOutputs.)
// Without -batch-size it adopts the loaded model's batch size: evaluation
// runs in batches of that size, and float32 sums in batches of another size
// round differently, so only the saved size reproduces the saved test loss
// exactly. Training on from the file (-epochs N) keeps that size too: it
// carries on the run the file came from.
func prepareSaveLoad(ctx context.Context, o *options) (*loadedModel, error) {
	if o.loadPath == "" {
		return nil, nil
	}
	p, meta, err := model.LoadSafetensors(ctx, o.loadPath)
	if errors.Is(err, model.ErrCheckpointNotModel) {
		return nil, usageError{fmt.Sprintf("%v: to carry on training from it, use -resume -checkpoint-dir %s", err, filepath.Dir(o.loadPath))}
	}
	if err != nil {
		return nil, err
	}
	if !o.batchSizeSet {
		// A value that is not a usable batch size is ignored rather than
		// fatal: the weights are fine whatever the metadata says.
		if n, err := strconv.Atoi(meta["batch_size"]); err == nil && n >= 1 && n <= data.TrainImages {
			o.cfg.BatchSize = n
		}
	}
	l := &loadedModel{path: o.loadPath, params: p, meta: meta}
	o.initialWeights = o.loadPath
	if o.evaluatesLoaded() {
		// Only evaluating: the report describes the model it scores, so it
		// takes the optimizer and seed that trained it from the file (the
		// flags that would set them are refused with -epochs 0).
		if opt, seed, ok := trainedWith(meta); ok {
			o.cfg.Optimizer, o.cfg.Seed = opt, seed
		} else {
			l.trainingUnknown = true
		}
	}
	return l, nil
}

// trainedWith reads back the optimizer, its settings and the seed that
// modelMetadata records (the fields of the optimizers not named keep their
// defaults); ok is false when the file lacks one of them or holds one no
// run could have used.
func trainedWith(meta map[string]string) (opt model.OptimizerConfig, seed uint64, ok bool) {
	opt = model.DefaultConfig().Optimizer
	opt.Name = meta["optimizer"]
	if opt.Name == "" && meta["beta1"] != "" {
		// Written before files named their optimizer, when Adam was the
		// only one.
		opt.Name = "adam"
	}
	settings := opt.Settings() // nil for an unknown optimizer
	if settings == nil {
		return opt, 0, false
	}
	for i, s := range settings {
		v, err := strconv.ParseFloat(meta[s.Name], 64)
		if err != nil {
			return opt, 0, false
		}
		settings[i].Value = v
	}
	if opt.Set(settings) != nil || opt.Validate() != nil {
		return opt, 0, false
	}
	seed, err := strconv.ParseUint(meta["seed"], 10, 64)
	return opt, seed, err == nil
}

// apply puts the loaded weights into the engine, which has its own fresh
// initial weights until then. The optimizer starts afresh either way, so
// more epochs after -load fine-tune from the loaded weights.
func (l *loadedModel) apply(engine model.Engine, log *logrus.Logger) error {
	if l == nil {
		return nil
	}
	if err := engine.SetState(model.State{Params: l.params}); err != nil {
		return fmt.Errorf("load model %s: %w", l.path, err)
	}
	fields := logrus.Fields{"file": l.path}
	for _, k := range []string{"test_accuracy", "test_loss", "epochs", "version"} {
		if v, ok := l.meta[k]; ok {
			fields["saved_"+k] = metadataValue(v)
		}
	}
	log.WithFields(fields).Info("loaded model")
	return nil
}

// metadataValue is a metadata string as a log field: a number as a number
// (JSON logs then carry 0.9759, not "0.9759"), anything else as it is.
func metadataValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(v, 64); err == nil {
		return logNumber(x)
	}
	return v
}

// saveModel writes the engine's current weights to o.savePath with the
// run's settings and test results as metadata.
func saveModel(o options, engine model.Engine, loaded *loadedModel, r report, log *logrus.Logger) error {
	if o.savePath == "" {
		return nil
	}
	st, err := engine.State()
	if err != nil {
		return fmt.Errorf("save model %s: %w", o.savePath, err)
	}
	meta := modelMetadata(o.cfg, r, loaded, o.initialWeights)
	if err := model.SaveSafetensors(o.savePath, st.Params, meta); err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"file": o.savePath, "test_accuracy": r.metrics.Accuracy}).Info("saved model")
	return nil
}

// confusionKey is the metadata entry holding the test confusion matrix as
// JSON, 10 rows of 10 counts.
const confusionKey = "test_confusion"

// modelMetadata is the file's __metadata__. Safetensors allows only strings
// there; floats are written with the fewest digits that read back as the
// same float64, so the saved test loss can be compared exactly.
func modelMetadata(cfg model.Config, r report, loaded *loadedModel, initialWeights string) map[string]string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	meta := map[string]string{
		"architecture":  model.Architecture,
		"epochs":        strconv.Itoa(r.epochsDone),
		"batch_size":    strconv.Itoa(cfg.BatchSize),
		"test_accuracy": f(r.metrics.Accuracy),
		"test_loss":     f(r.metrics.Loss),
		"test_images":   strconv.Itoa(r.metrics.Images),
		"device":        r.device,
		"version":       programVersion(),
	}
	// An evaluation passes on how the file's model was trained, epochs
	// included; of a file that did not record it, it records nothing.
	if r.evaluation {
		delete(meta, "epochs")
		if n, err := strconv.Atoi(loaded.meta["epochs"]); err == nil && n >= 0 && !r.trainingUnknown {
			meta["epochs"] = strconv.Itoa(n)
		}
		if loaded.meta["interrupted"] == "true" {
			meta["interrupted"] = "true"
		}
	}
	if !r.trainingUnknown {
		meta["optimizer"] = cfg.Optimizer.Name
		meta["seed"] = strconv.FormatUint(cfg.Seed, 10)
		for _, s := range cfg.Optimizer.Settings() {
			meta[s.Name] = f(s.Value) // "lr", "beta1", …, as Keras names them
		}
	}
	// Rows are true labels, columns predictions; -serve draws it. (No
	// date: the same run must save the same bytes, resumed or not; the
	// file's modification time says when.)
	if b, err := json.Marshal(r.metrics.Confusion); err == nil {
		meta[confusionKey] = string(b)
	}
	if r.partial {
		meta["interrupted"] = "true"
	}
	if initialWeights != "" {
		// The weights did not start from the seed's initialisation.
		meta["initial_weights"] = initialWeights
	}
	return meta
}

// programVersion names the build: the main module's version when built
// from a tagged module, else the VCS revision Go stamps into binaries built
// in a checkout, else "devel" (e.g. under go test or -buildvcs=false).
func programVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
