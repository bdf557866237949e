package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
// resumeCheckpoint. The caller releases the lock when the run ends; the
// process ending, however it ends, releases it too.
func prepareCheckpoints(ctx context.Context, o *options) (*model.Checkpoint, string, *fileio.Lock, error) {
	if o.checkpointDir == "" {
		return nil, "", nil, nil
	}
	dir := o.checkpointDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", nil, usageError{fmt.Sprintf("-checkpoint-dir %s: %v", dir, err)}
	}
	lock, err := model.LockCheckpointDir(dir)
	if err != nil {
		return nil, "", nil, err
	}
	if err := fileio.CheckTarget(model.CheckpointPath(dir, model.TrainState{})); err != nil {
		lock.Unlock()
		return nil, "", nil, usageError{fmt.Sprintf("-checkpoint-dir: %v", err)}
	}
	ck, path, err := resumeCheckpoint(ctx, o)
	if err != nil {
		lock.Unlock()
		return nil, "", nil, err
	}
	return ck, path, lock, nil
}

// resumeCheckpoint, with -resume, reads the newest checkpoint (nil
// without) and adopts its seed, learning rate and batch size, refusing
// flags that contradict them: a run resumed with other hyperparameters
// would not be the run that was stopped. Without -resume it refuses a
// folder that already holds checkpoints, whose pruning would mix two runs.
func resumeCheckpoint(ctx context.Context, o *options) (*model.Checkpoint, string, error) {
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
	path, err := model.LatestCheckpoint(dir)
	if err != nil {
		return nil, "", fmt.Errorf("-resume: %w", err)
	}
	ck, err := model.LoadCheckpoint(ctx, path)
	if err != nil {
		return nil, "", err
	}
	saved := ck.Config
	for _, c := range []struct {
		flag      string
		set, same bool
		got, want any
	}{
		{"-seed", o.seedSet, o.cfg.Seed == saved.Seed, o.cfg.Seed, saved.Seed},
		{"-lr", o.lrSet, o.cfg.LearningRate == saved.LearningRate, o.cfg.LearningRate, saved.LearningRate},
		{"-batch-size", o.batchSizeSet, o.cfg.BatchSize == saved.BatchSize, o.cfg.BatchSize, saved.BatchSize},
	} {
		if c.set && !c.same {
			return nil, "", usageError{fmt.Sprintf("-resume: %s %v differs from the checkpoint's %v (%s); resume with the same hyperparameters, or leave the flag out", c.flag, c.got, c.want, path)}
		}
	}
	o.cfg.Seed, o.cfg.LearningRate, o.cfg.BatchSize = saved.Seed, saved.LearningRate, saved.BatchSize
	if o.cfg.Beta1 != saved.Beta1 || o.cfg.Beta2 != saved.Beta2 || o.cfg.Epsilon != saved.Epsilon || o.cfg.Dtype != saved.Dtype {
		return nil, "", fmt.Errorf("-resume: %s was made with Adam β1 %v, β2 %v, ε %v, %v; this program trains with %v, %v, %v, %v",
			path, saved.Beta1, saved.Beta2, saved.Epsilon, saved.Dtype, o.cfg.Beta1, o.cfg.Beta2, o.cfg.Epsilon, o.cfg.Dtype)
	}
	return ck, path, nil
}

// restoreCheckpoint puts a checkpoint's weights and Adam state into the
// backend and its position into the trainer.
func restoreCheckpoint(ck *model.Checkpoint, path string, backend model.Backend, trainer *model.Trainer, log *logrus.Logger) error {
	if ck == nil {
		return nil
	}
	if err := backend.SetParams(ck.Params); err != nil {
		return fmt.Errorf("resume from %s: %w", path, err)
	}
	if err := backend.SetOptimizerState(ck.Optimizer); err != nil {
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
func saveCheckpoint(dir string, cfg model.Config, s model.TrainState, backend model.Backend, log *logrus.Logger) error {
	p, err := backend.Params()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	opt, err := backend.OptimizerState()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	path := model.CheckpointPath(dir, s)
	if err := model.SaveCheckpoint(path, &model.Checkpoint{Config: cfg, Params: p, Optimizer: opt, Train: s}); err != nil {
		return err
	}
	if err := model.PruneCheckpoints(dir, keepCheckpoints); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	log.WithFields(logrus.Fields{"file": path, "epochs_done": s.Epoch, "steps_done": s.Step}).Info("saved checkpoint")
	return nil
}
