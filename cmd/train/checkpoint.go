package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/sirupsen/logrus"

	"mnist/data/fileio"
	"mnist/model"
)

// keepCheckpoints is how many checkpoint files -checkpoint-dir keeps: the
// newest, and the one before it in case the newest is lost with its disk
// block or was written at a moment the user would rather not resume from.
const keepCheckpoints = 2

// prepareCheckpoints runs before data loading and training. It makes the
// checkpoint folder, takes its lock for the whole run (a second run on the
// same folder would mix its checkpoints with this one's and prune them: it
// is refused, exit 1) and checks that a checkpoint can be written there (a
// usage error now rather than a lost checkpoint later); then see
// resumeCheckpoint. Once nothing is refused, leftovers of interrupted
// checkpoint saves are deleted. The caller releases the lock when the run ends; the
// process ending, however it ends, releases it too.
func prepareCheckpoints(ctx context.Context, o *options, log *logrus.Logger) (*model.Checkpoint, string, *fileio.Lock, error) {
	if o.checkpointDir == "" {
		return nil, "", nil, nil
	}
	dir := o.checkpointDir
	// A folder that is not there holds nothing to resume: say so before
	// making it, so that a mistyped name leaves no empty folder behind.
	if o.resume {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil, fmt.Errorf("-resume: no checkpoint in %s: the folder does not exist", dir)
		}
	}
	if err := fileio.MkdirAllSynced(dir, 0o755); err != nil {
		return nil, "", nil, usageError{fmt.Sprintf("-checkpoint-dir: %v", err)}
	}
	lock, err := model.LockCheckpointDir(dir)
	if err != nil {
		return nil, "", nil, err
	}
	if err := fileio.CheckTarget(model.CheckpointPath(dir, model.TrainState{})); err != nil {
		lock.Unlock()
		return nil, "", nil, usageError{fmt.Sprintf("-checkpoint-dir: %v", err)}
	}
	ck, path, err := resumeCheckpoint(ctx, o, log)
	if err != nil {
		lock.Unlock()
		return nil, "", nil, err
	}
	removeCheckpointTemps(dir, log)
	return ck, path, lock, nil
}

// removeCheckpointTemps deletes what checkpoint saves of a killed run left
// in dir (each as large as a checkpoint), now that this run holds the
// folder's lock and nothing was refused. One that cannot be deleted is
// only a warning: it is never read as a checkpoint.
func removeCheckpointTemps(dir string, log *logrus.Logger) {
	removed, err := model.RemoveCheckpointTemps(dir)
	if len(removed) > 0 {
		log.WithFields(logrus.Fields{"folder": dir, "files": len(removed)}).Info("removed temporary files of interrupted checkpoint saves")
	}
	if err != nil {
		log.WithError(err).Warn("temporary files of interrupted checkpoint saves left in place")
	}
}

// resumeCheckpoint, with -resume, reads the newest checkpoint that reads
// back whole (nil without -resume) and adopts its seed, optimizer,
// learning rate and batch size, refusing flags that contradict them: a run
// resumed with other hyperparameters would not be the run that was
// stopped. It adopts the stopped run's target of epochs too, unless
// -epochs gives another (or the checkpoint does not record it), and
// refuses one the checkpoint has passed. Once nothing is refused, each
// newer checkpoint that did not read back whole is renamed aside, with a
// warning: left in place, it would be kept by pruning in place of a good
// one. Without -resume it refuses a folder that already holds checkpoints,
// whose pruning would mix two runs.
func resumeCheckpoint(ctx context.Context, o *options, log *logrus.Logger) (*model.Checkpoint, string, error) {
	dir := o.checkpointDir
	if !o.resume {
		files, err := model.ListCheckpoints(dir)
		if err != nil {
			return nil, "", err
		}
		if len(files) > 0 {
			return nil, "", usageError{fmt.Sprintf("-checkpoint-dir %s already holds checkpoints (%s): add -resume to carry on from them, or use another folder", dir, filepath.Base(files[len(files)-1]))}
		}
		return nil, "", nil
	}
	ck, path, bad, err := model.LoadNewestCheckpoint(ctx, dir)
	if err != nil {
		// Every file is bad: the error names the newest, and is the one
		// line the run ends with.
		return nil, "", fmt.Errorf("-resume: %w", err)
	}
	saved := ck.Config
	for _, c := range []struct {
		flag      string
		set, same bool
		got, want any
	}{
		{"-seed", o.seedSet, o.cfg.Seed == saved.Seed, o.cfg.Seed, saved.Seed},
		{"-optimizer", o.optimizerSet, o.cfg.Optimizer.Name == saved.Optimizer.Name, o.cfg.Optimizer.Name, saved.Optimizer.Name},
		{"-lr", o.lrSet, o.cfg.Optimizer.LearningRate == saved.Optimizer.LearningRate, o.cfg.Optimizer.LearningRate, saved.Optimizer.LearningRate},
		{"-batch-size", o.batchSizeSet, o.cfg.BatchSize == saved.BatchSize, o.cfg.BatchSize, saved.BatchSize},
	} {
		if c.set && !c.same {
			return nil, "", usageError{fmt.Sprintf("-resume: %s %v differs from the checkpoint's %v (%s); resume with the same hyperparameters, or leave the flag out", c.flag, c.got, c.want, path)}
		}
	}
	o.cfg.Seed, o.cfg.BatchSize = saved.Seed, saved.BatchSize
	o.cfg.Optimizer.Name, o.cfg.Optimizer.LearningRate = saved.Optimizer.Name, saved.Optimizer.LearningRate
	if !o.epochsSet && saved.Epochs > 0 {
		o.cfg.Epochs = saved.Epochs
	}
	o.initialWeights = ck.InitialWeights
	// The settings no flag sets must be this program's: a checkpoint made
	// with other ones is another program's run.
	if !slices.Equal(o.cfg.Optimizer.Settings(), saved.Optimizer.Settings()) || o.cfg.Dtype != saved.Dtype {
		return nil, "", fmt.Errorf("-resume: %s was made with %s %v, %v; this program trains with %v, %v",
			path, saved.Optimizer.Name, saved.Optimizer.Settings(), saved.Dtype, o.cfg.Optimizer.Settings(), o.cfg.Dtype)
	}
	if err := checkResumeEpochs(o.cfg.Epochs, o.epochsSet, ck.Train, path); err != nil {
		return nil, "", err
	}
	for _, d := range bad {
		aside, err := model.SetAsideCheckpoint(d.Path)
		if err != nil {
			return nil, "", fmt.Errorf("-resume: %w", err)
		}
		log.WithError(d.Err).WithField("renamed_to", aside).Warn("skipping a damaged checkpoint, renamed aside; resuming from an older one")
	}
	return ck, path, nil
}

// checkResumeEpochs refuses an -epochs total (given, or the default when
// not set) that the checkpoint at path, at s, has already passed: fewer
// epochs than it finished, or as many while it is part-way into the next.
// Such a run would train nothing and report a model of more training than
// it asked for. -epochs 0 only evaluates the checkpoint, whatever its
// position.
func checkResumeEpochs(epochs int, set bool, s model.TrainState, path string) error {
	if epochs == 0 || epochs > s.Epoch || (epochs == s.Epoch && s.Step == 0) {
		return nil
	}
	flag := fmt.Sprintf("-epochs %d", epochs)
	if !set {
		flag += " (the default)"
	}
	progress := plural(s.Epoch, "epoch")
	if s.Step > 0 {
		progress += " and " + plural(s.Step, "step")
	}
	return usageError{fmt.Sprintf("-resume: %s is below the checkpoint's progress (%s, %s): give -epochs %d or more to carry on, or -epochs 0 to evaluate it",
		flag, progress, path, s.Epoch+1)}
}

// restoreCheckpoint puts a checkpoint's weights and optimizer state into
// the engine and its position into the trainer.
func restoreCheckpoint(ck *model.Checkpoint, path string, engine model.Engine, trainer *model.Trainer, log *logrus.Logger) error {
	if ck == nil {
		return nil
	}
	if err := engine.SetState(model.State{Params: ck.Params, Optimizer: ck.Optimizer}); err != nil {
		return fmt.Errorf("resume from %s: %w", path, err)
	}
	if err := trainer.Restore(ck.Train); err != nil {
		return fmt.Errorf("resume from %s: %w", path, err)
	}
	log.WithFields(logrus.Fields{
		"file":        path,
		"epochs_done": ck.Train.Epoch,
		"steps_done":  ck.Train.Step,
	}).Info("resumed from checkpoint")
	return nil
}

// saveCheckpoint writes the run's state at s to dir, then removes all but
// the newest keepCheckpoints files: only once the new one is safely on disk.
// Its errors name the checkpoint's file.
func saveCheckpoint(o *options, s model.TrainState, engine model.Engine, log *logrus.Logger) error {
	dir := o.checkpointDir
	path := model.CheckpointPath(dir, s)
	st, err := engine.State()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	ck := &model.Checkpoint{Config: o.cfg, Params: st.Params, Optimizer: st.Optimizer, Train: s, InitialWeights: o.initialWeights}
	if err := model.SaveCheckpoint(path, ck); err != nil {
		return err
	}
	if err := model.PruneCheckpoints(dir, keepCheckpoints); err != nil {
		return fmt.Errorf("checkpoint %s written, but: %w", path, err)
	}
	log.WithFields(logrus.Fields{"file": path, "epochs_done": s.Epoch, "steps_done": s.Step}).Info("saved checkpoint")
	return nil
}

// checkpointFailures counts a run's end-of-epoch checkpoints and those
// that failed (not written, or old ones not pruned), keeping the first error.
type checkpointFailures struct {
	tried, failed int
	first         error
}

// add counts one checkpoint, failed when err is not nil.
func (c *checkpointFailures) add(err error) {
	c.tried++
	if err == nil {
		return
	}
	c.failed++
	if c.first == nil {
		c.first = err
	}
}

// err is the error the run ends with for them, nil when all were written.
func (c checkpointFailures) err() error {
	if c.failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d checkpoints failed; the first: %w", c.failed, c.tried, c.first)
}
