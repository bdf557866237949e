//go:build cuda

package gpu

import (
	"errors"
	"fmt"

	"gorgonia.org/cu"

	"mnist/model"
)

// The persistent engine is the native engine with its full training steps
// run many to a launch: mlp.cu's train_steps keeps one block on every SM
// for the whole launch and does step after step (forward, backward,
// update) with barriers across the grid where the other engines end a
// kernel. At batch 32 a step is a few MFLOP, and on a GPU the other
// engines' steps are mostly the gaps between launches (or a graph's
// nodes); here the gaps are three grid barriers a step.
//
// StepAt queues a full batch and returns; the queued steps, consecutive
// batches of the order, go to the GPU as one launch when there are
// maxPersistSteps of them, when a step does not follow the last, and
// before anything else the engine does (do flushes). The trainer reads the
// totals every deviceReadEvery or so, so a launch holds at most that much
// work, and a stop (Ctrl-C) waits for no more. Partial batches, Step,
// Forward and the state verbs are the native engine's, on the same legacy
// stream, after the queued steps.
type persistState struct {
	grid int          // blocks: one per SM
	part cu.DevicePtr // PARTS x batch x Hidden1 floats: the first layer's partial sums
	bar  cu.DevicePtr // two uint32: grid_sync's count and generation

	// The queued steps: count full batches of the order from lo, the first
	// after step0 updates.
	lo, count int
	step0     int64
}

const (
	// persistThreads is train_steps's block: a multiple of the warp, at
	// least a thread per unit of the widest hidden layer.
	persistThreads = 256
	// persistParts is PARTS in mlp.cu: the first layer's product is summed
	// in that many parts over the pixels.
	persistParts = 8
	// maxPersistSteps bounds a launch: about 2 ms of steps on an H100, so
	// that the GPU starts early and a launch is never long.
	maxPersistSteps = 256
)

// newPersistentEngine opens the native engine and adds train_steps's grid
// and buffers.
func newPersistentEngine(ordinal int, cfg model.Config) (model.Engine, error) {
	e, err := newNativeEngine(ordinal, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnginePersistent, err)
	}
	b := e.(*nativeEngine)
	p := &persistState{}
	err = b.withContext(func() error {
		var err error
		if p.grid, err = b.k.gridPerSM(kTrainSteps, persistThreads); err != nil {
			return err
		}
		if p.part, err = b.mem.alloc("first layer's partial sums", int64(persistParts*cfg.BatchSize*model.Hidden1*4)); err != nil {
			return err
		}
		p.bar, err = b.mem.alloc("grid barrier", 8)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnginePersistent, errors.Join(err, b.Close()))
	}
	b.persist = p
	return b, nil
}

// persistentStep queues the full batch order[lo:hi]. Called inside call,
// with the context current.
func (b *nativeEngine) persistentStep(lo, hi int) error {
	p := b.persist
	if b.sets[model.TrainSet] == nil {
		return errors.New("StepAt before Load")
	}
	if _, err := b.loop.batchAt(lo, hi, b.cfg.BatchSize); err != nil {
		return err
	}
	if p.count > 0 && lo != p.lo+p.count*b.cfg.BatchSize {
		if err := b.flushSteps(); err != nil {
			return err
		}
	}
	if p.count == 0 {
		p.lo, p.step0 = lo, b.step
	}
	p.count++
	b.step++
	if p.count == maxPersistSteps {
		return b.flushSteps()
	}
	return nil
}

// flushSteps launches the queued steps, if any.
func (b *nativeEngine) flushSteps() error {
	p := b.persist
	if p == nil || p.count == 0 {
		return nil
	}
	count := p.count
	p.count = 0
	ds := b.sets[model.TrainSet]
	acts, deltas, off := b.buf.acts, b.buf.deltas, b.layout.offsets
	slots := [2]cu.DevicePtr{b.slots[0]}
	if len(b.slots) > 1 {
		slots[1] = b.slots[1]
	}
	args := []kernelArg{argPtr(ds.images), argPtr(ds.labels), argPtr(b.loop.order),
		argInt(p.lo), argInt(count), argInt(b.cfg.BatchSize),
		argPtr(b.params), argPtr(b.grads), argPtr(slots[0]), argPtr(slots[1]), argInt(b.layout.total),
		argInt(off[1]), argInt(off[2]), argInt(off[3]), argInt(off[4]), argInt(off[5]),
		argPtr(p.part), argPtr(acts[1]), argPtr(acts[2]), argPtr(b.buf.logProbs), argPtr(deltas[3]),
		argPtr(b.buf.stats), argPtr(deltas[2]), argPtr(deltas[1]),
		argPtr(b.loop.totals), argPtr(b.batchLoss), argPtr(p.bar), kernelArg(p.step0)}
	return b.k.launchCooperative(kTrainSteps, p.grid, persistThreads, append(args, b.opt.fusedArgs()...)...)
}
