package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"

	"mnist/data"
	"mnist/gpu"
	"mnist/model"
)

// trainGCPercent is the garbage collector's target while MNIST loads and
// the model trains (GOGC's meaning; the Go default is 100).
const trainGCPercent = 20

// train wires the pieces: data, device, trainer, evaluator, report.
func train(ctx context.Context, o options, log *logrus.Logger, stdout, stderr io.Writer) error {
	// Before anything is read, downloaded or trained: a bad output is a
	// usage error now, not a lost result later.
	if err := checkOutputs(o); err != nil {
		return err
	}
	loaded, err := prepareSaveLoad(ctx, &o)
	if err != nil {
		return err
	}
	if o.predict {
		// Before the data folder: predicting needs only the model file.
		return predict(ctx, o, loaded, log, stdout)
	}
	if o.serveAddr != "" {
		return serve(ctx, o, loaded, log, stdout)
	}
	resumed, resumedPath, lock, err := prepareCheckpoints(ctx, &o, log)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	dir := o.dataDir
	if dir == "" {
		var err error
		if dir, err = data.DefaultDir(); err != nil {
			return fmt.Errorf("%w; give a data folder with -data-dir DIR", err)
		}
	}
	fetcher := &data.Fetcher{Sources: data.DefaultSources(nil), Log: log}
	if o.downloadOnly {
		if err := fetcher.Ensure(ctx, dir); err != nil {
			return fmt.Errorf("get MNIST into %s: %w", dir, err)
		}
		log.WithField("dir", dir).Info("MNIST is present and verified")
		return nil
	}
	// The garbage collector's target sets the peak memory of a run: loading
	// grows its buffers by doubling, and a training step leaves about 5 KB
	// of garbage, so by the end of 5 epochs the heap had reached twice its
	// live 58 MB. Collected at 20% rather than 100% growth, the peak RSS of
	// a default run fell from about 148 MiB to 138-140 MiB, for a
	// collection about every 2,000 steps that takes a millisecond or two
	// of the second core.
	defer debug.SetGCPercent(debug.SetGCPercent(trainGCPercent))
	// Each file is read (or downloaded) once, verified, and parsed from
	// those same bytes.
	trainSet, testSet, err := fetcher.Load(ctx, dir)
	if err != nil {
		return fmt.Errorf("get MNIST from %s: %w", dir, err)
	}

	dev, engine, release, err := openEngine(o, loaded, log)
	if err != nil {
		return err
	}
	defer release()
	trainer, err := model.NewTrainer(o.cfg, engine, trainSet)
	if err != nil {
		return err
	}
	if err := restoreCheckpoint(resumed, resumedPath, engine, trainer, log); err != nil {
		return err
	}
	epochsBefore := 0 // finished before this run, with -resume
	if resumed != nil {
		epochsBefore = resumed.Train.Epoch
	}

	startFields := logrus.Fields{
		"device":     dev.Name(),
		"model":      model.Architecture,
		"parameters": model.ParamCount(),
		"test":       testSet.Len(),
		"batch_size": o.cfg.BatchSize,
	}
	if o.cfg.Epochs == 0 {
		// -epochs 0 only evaluates: no training to announce.
		log.WithFields(startFields).Info("evaluating")
	} else {
		startFields["train"] = trainSet.Len()
		startFields["epochs"] = o.cfg.Epochs
		startFields["optimizer"] = o.cfg.Optimizer.Name
		startFields["lr"] = o.cfg.Optimizer.LearningRate
		startFields["seed"] = o.cfg.Seed
		log.WithFields(startFields).Info("training")
	}

	progress := newProgress(o, log, stderr)
	start := time.Now()
	hooks := progress.hooks()
	savedEpoch := -1 // the epoch whose end was checkpointed last
	// A checkpoint that cannot be written (a full disk, say) costs the
	// chance to resume from there, not the training: it is logged, the next
	// epoch's checkpoint tries again, and the run fails for it only once
	// the model has been evaluated and saved.
	var failed checkpointFailures
	if o.checkpointDir != "" {
		hooks.Checkpoint = func(s model.TrainState) error {
			if err := saveCheckpoint(&o, s, engine, log); err != nil {
				failed.add(err)
				log.WithError(err).Error("checkpoint failed; training goes on")
				return nil
			}
			failed.add(nil)
			savedEpoch = s.Epoch
			return nil
		}
	}
	history, fitErr := trainer.Fit(ctx, hooks)
	progress.finish()
	trainSeconds := time.Since(start).Seconds()
	if fitErr != nil && !errors.Is(fitErr, context.Canceled) {
		// Diverged or failed: the parameters may be NaN, so there is no
		// model worth evaluating or reporting, only the error.
		return fitErr
	}
	if fitErr != nil && o.checkpointDir != "" {
		// Interrupted between two steps: save where training stands, so
		// that -resume carries on from the next step, not the last epoch.
		// Stopped just after an epoch's end, that checkpoint is already
		// written: the same state again would only cost time.
		s, err := trainer.State()
		if err == nil && (s.Step > 0 || s.Epoch != savedEpoch) {
			err = saveCheckpoint(&o, s, engine, log)
		}
		if err != nil {
			log.WithError(err).Error("could not write the checkpoint of the interrupted run")
		}
	}

	// The evaluation runs to its end whatever signal comes (10,000 images,
	// well under a second on the CPU): an interrupted run's partial model
	// is scored, and a signal during the evaluation of a finished one must
	// not cost its outputs either.
	metrics, err := model.Evaluate(context.WithoutCancel(ctx), engine, testSet, o.cfg.BatchSize)
	if err != nil {
		return err
	}
	r := report{
		metrics:         metrics,
		trainSeconds:    trainSeconds,
		trainImages:     trainer.Trained(),
		epochsDone:      epochsBefore + len(history),
		resumedAfter:    epochsBefore,
		cfg:             o.cfg,
		device:          dev.Name(),
		partial:         fitErr != nil || midEpochOnly(o.cfg, resumed),
		evaluation:      o.evaluatesLoaded(),
		trainingUnknown: loaded != nil && loaded.trainingUnknown,
		history:         history,
		dataDir:         dir,
		gpu:             o.gpu,
		engine:          o.engine,
	}
	r.log(log)
	if o.logFormat == "text" {
		r.print(stdout)
	}
	// Every output is written whatever became of the others, the model
	// first: it is what the training time bought, and neither a full disk
	// for the plot nor a number the metrics cannot hold may cost it.
	saveErr := saveModel(o, engine, loaded, r, log)
	outErr := r.writeOutputs(o)
	// A signal after training, during the evaluation say, stopped nothing,
	// but the run was interrupted all the same: it exits 130.
	interrupted := fitErr
	if interrupted == nil {
		interrupted = ctx.Err()
	}
	if interrupted != nil && outErr != nil {
		// Interrupted: exit 130 as documented, but say what was lost.
		log.WithError(outErr).Error("could not write the metrics or plot of the interrupted run")
		outErr = nil
	}
	// An interrupted run exits 130 whatever checkpoints failed: each
	// failure is in the log.
	var checkpointErr error
	if interrupted == nil {
		checkpointErr = failed.err()
	}
	if err := joinErrors(saveErr, outErr, checkpointErr); err != nil {
		return err
	}
	return interrupted
}

// midEpochOnly says the run only evaluates (-epochs 0) a checkpoint
// taken part-way into an epoch: its model is as partial as an interrupted
// run's, and is reported, saved and written as one.
func midEpochOnly(cfg model.Config, resumed *model.Checkpoint) bool {
	return cfg.Epochs == 0 && resumed != nil && resumed.Train.Step > 0
}

// openEngine opens the device and compiles the network on it with the
// -engine engine, with the -load weights when there are any. release closes
// both.
func openEngine(o options, loaded *loadedModel, log *logrus.Logger) (gpu.Device, model.Engine, func(), error) {
	dev, err := gpu.Open(o.gpu, o.engine, log)
	if err != nil {
		return nil, nil, nil, err
	}
	engine, err := dev.NewEngine(o.cfg)
	if err != nil {
		dev.Close()
		return nil, nil, nil, fmt.Errorf("set up the network on %s: %w", dev.Name(), err)
	}
	release := func() {
		engine.Close()
		dev.Close()
	}
	if err := loaded.apply(engine, log); err != nil {
		release()
		return nil, nil, nil, err
	}
	return dev, engine, release, nil
}
