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
// persistLaunchSteps of them, when a step does not follow the last, and
// before anything else the engine does (do flushes). The trainer reads the
// totals every deviceReadEvery or so, so a launch holds at most that much
// work, and a stop (Ctrl-C) waits for no more. Partial batches, Step,
// Forward and the state verbs are the native engine's, on the same legacy
// stream, after the queued steps.
type persistState struct {
	grid   int          // blocks: one per SM
	parts  int          // the first layer's product is summed in this many parts (persistParts)
	groups int          // a block takes this many rows at once in phase B (persistRowGroups)
	part   cu.DevicePtr // parts x batch x Hidden1 floats: those partial sums
	bar    cu.DevicePtr // barWords uint32: grid_sync's count and, a line on, generation
	steps  int          // full steps to a launch at most (launchSteps)

	// The queued steps: count full batches of the order from lo, the first
	// after step0 updates.
	lo, count int
	step0     int64
}

const (
	// persistThreads is train_steps's block, PERSIST_THREADS in mlp.cu: two
	// halves of a thread per unit of the first hidden layer.
	persistThreads = 2 * model.Hidden1
	// persistRowTile is ROW_TILE in mlp.cu: a tile of phase A is that many
	// rows of the batch over one part of the pixels.
	persistRowTile = 8
	// maxPersistParts bounds the parts, and so the partial sums that phase
	// B adds a row at a time.
	maxPersistParts = 56
	// maxPersistSteps and maxPersistRows bound a launch: 256 steps, and
	// 8,192 rows in all at larger batches (32 steps at batch 256, one at
	// 8,192 or more), a few ms on an H100, so that the GPU starts early
	// and a launch is never long (a stop waits for the launches queued).
	maxPersistSteps = 256
	maxPersistRows  = 8192
	// maxRowGroups is MAX_ROW_GROUPS in mlp.cu: at most a quarter block a
	// row in phase B.
	maxRowGroups = 4
	// barWords and barGen are BAR_WORDS and BAR_GEN in mlp.cu: grid_sync's
	// words, and where the generation is among them.
	barWords = 64
	barGen   = 32
)

// The phases of a step (PHASE_* in mlp.cu): the first layer's partial
// sums, the rows (the rest of the network and the loss), the gradients
// and the update. Training runs them all; BenchmarkPersistentParts times
// the barriers alone, then adds one phase at a time.
const (
	phaseFirst  = 1
	phaseRows   = 2
	phaseUpdate = 4
	allPhases   = phaseFirst | phaseRows | phaseUpdate
)

// persistParts is how many parts phase A splits the pixels into, for a
// batch of rows on a grid of blocks: as many as keep each half block busy
// with one tile (the grid's 2*blocks halves over ceil(rows/8) row tiles),
// a divisor of the 784 pixels with parts of at most 392, and at most
// maxPersistParts. At batch 32 on an H100's 132 SMs that is 56 parts of 14
// pixels; at 1024, 2 of 392.
func persistParts(rows, blocks int) int {
	rowTiles := (rows + persistRowTile - 1) / persistRowTile
	best := 2
	for d := 2; d <= maxPersistParts; d++ {
		if model.Inputs%d == 0 && d*rowTiles <= 2*blocks {
			best = d
		}
	}
	return best
}

// persistLaunchSteps is how many full steps of a batch of rows one launch
// takes at most: maxPersistSteps, or maxPersistRows rows' worth, and at
// least one.
func persistLaunchSteps(rows int) int {
	return max(1, min(maxPersistSteps, maxPersistRows/rows))
}

// persistRowGroups is how many rows of a batch of rows a block of phase B
// takes at once on a grid of blocks: one while the grid has a block a row,
// then two, then four (a quarter block, 64 threads, a row: Hidden2, the
// widest loop of the row but one).
func persistRowGroups(rows, blocks int) int {
	switch {
	case rows <= blocks:
		return 1
	case rows <= 2*blocks:
		return 2
	}
	return maxRowGroups
}

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
		p.parts = persistParts(cfg.BatchSize, p.grid)
		p.groups = persistRowGroups(cfg.BatchSize, p.grid)
		p.steps = persistLaunchSteps(cfg.BatchSize)
		bytes := int64(p.parts) * int64(cfg.BatchSize) * model.Hidden1 * 4
		if p.part, err = b.mem.alloc("first layer's partial sums", bytes); err != nil {
			return err
		}
		if p.bar, err = b.mem.alloc("grid barrier", barWords*4); err != nil {
			return err
		}
		return b.opt.prepare(b.legacy, &b.mem)
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
	if _, _, err := b.loop.trainingBatch(b.sets, lo, hi, b.cfg.BatchSize); err != nil {
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
	if p.count == p.steps {
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
	return b.launchSteps(p.lo, count, p.step0, allPhases)
}

// launchSteps launches train_steps for count full batches of the order
// from lo, after step0 updates, running phases of each step.
func (b *nativeEngine) launchSteps(lo, count int, step0 int64, phases int) error {
	p := b.persist
	if count < 1 || count > p.steps {
		return fmt.Errorf("%s: %d steps in one launch, want 1 to %d", EnginePersistent, count, p.steps)
	}
	ds := b.sets[model.TrainSet]
	acts, deltas := b.buf.acts, b.buf.deltas
	args := []kernelArg{argPtr(ds.images), argPtr(ds.labels), argPtr(b.loop.order),
		argInt(lo), argInt(count), argInt(b.cfg.BatchSize)}
	args = append(args, b.flatStateArgs()...)
	args = append(args, argPtr(p.part), argInt(p.parts), argInt(p.groups), argPtr(acts[1]), argPtr(acts[2]), argPtr(b.buf.logProbs),
		argPtr(deltas[3]), argPtr(b.buf.stats), argPtr(deltas[2]), argPtr(deltas[1]),
		argPtr(b.loop.totals), argPtr(b.batchLoss), argPtr(p.bar), kernelArg(step0), argInt(phases))
	return b.k.launchCooperative(kTrainSteps, p.grid, persistThreads, append(args, b.opt.fusedArgs()...)...)
}
