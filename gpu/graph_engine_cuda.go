//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
)

// graphEngine is the Gorgonia engine of the cuda build: the network as a
// Gorgonia graph of device ops (graph_ops_cuda.go), differentiated by
// Gorgonia and run by Gorgonia's CUDA tape machine, every instruction on
// the GPU. One run of the program is one training step, the optimizer's
// update included. The parameters, the optimizer's state and the data sets
// stay on the device; a training step through the DeviceLoop verbs copies
// nothing either way: the epoch's order goes up once, and the running loss
// and hits come back only when the trainer asks.
//
// Forward-only work (Forward: evaluation, prediction) runs the same program
// with the backward ops and the update switched off: a tape machine has
// one CUDA context, and a second machine's context could not reach the
// parameters.
//
// Full training steps through DeviceLoop are replayed from a CUDA graph
// that captured one run of the program (graph_capture_cuda.go), unless
// the engine was opened without (gorgoniaOptions) or the capture failed.
type graphEngine struct {
	mu     sync.Mutex
	cfg    model.Config
	run    *graphRun
	graph  *deviceGraph
	vm     G.VM
	closed bool
	broken error // the first device error; the GPU state is unknown after it
	warn   func(error)

	sets     map[model.DataID]*deviceSet
	hostIdx  []int32
	hostLP   []float32
	hostStat []float32
}

// gorgoniaOptions are how the Gorgonia engine is opened: capture says
// whether full training steps are replayed from a captured CUDA graph;
// warn, if set, hears why, if the capture fails and the engine goes on
// without.
type gorgoniaOptions struct {
	capture bool
	warn    func(error)
}

// newGorgoniaEngine opens the Gorgonia engine as -engine gorgonia does:
// its full training steps captured.
func newGorgoniaEngine(cfg model.Config) (model.Engine, error) {
	return openGorgonia(cfg, gorgoniaOptions{capture: true})
}

// openGorgonia builds the graph, starts Gorgonia's tape machine on the
// driver's device 0 (the GPU Open selected) and sets up the device state in
// the machine's context. Machines are built and closed on one OS thread
// (onOneThread).
func openGorgonia(cfg model.Config, opts gorgoniaOptions) (model.Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gorgonia cuda: %w", err)
	}
	if cfg.Dtype != tensor.Float32 {
		return nil, fmt.Errorf("gorgonia cuda: only float32 is supported, got %v", cfg.Dtype)
	}
	if cfg.BatchSize > maxNativeBatch {
		return nil, fmt.Errorf("gorgonia cuda: batch size %d is larger than the supported %d", cfg.BatchSize, maxNativeBatch)
	}
	opt, err := newDeviceOptimizer(cfg.Optimizer)
	if err != nil {
		return nil, fmt.Errorf("gorgonia cuda: %w", err)
	}
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("gorgonia cuda: initialise parameters: %w", err)
	}
	r := &graphRun{batch: cfg.BatchSize, layout: newParamLayout(), opt: opt}
	dg, err := buildDeviceGraph(r)
	if err != nil {
		return nil, fmt.Errorf("gorgonia cuda: build graph: %w", err)
	}
	e := &graphEngine{cfg: cfg, run: r, graph: dg, warn: opts.warn, sets: map[model.DataID]*deviceSet{},
		hostIdx: make([]int32, cfg.BatchSize), hostLP: make([]float32, cfg.BatchSize*classes),
		hostStat: make([]float32, 2*cfg.BatchSize)}
	onOneThread(func() {
		if err = e.start(initial); err == nil && opts.capture {
			// Without a capture stream the engine runs the program every
			// step: slower, the same results.
			cerr := r.onDevice(r.startCapture)
			if cerr != nil && e.warn != nil {
				e.warn(cerr)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("gorgonia cuda: %w", errors.Join(err, e.release()))
	}
	return e, nil
}

// start makes the machine, waits for its engine and sets up the state.
func (e *graphEngine) start(initial *model.Params) (err error) {
	// NewTapeMachine panics when CUDA fails to start.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("starting Gorgonia's CUDA machine: %v", p)
		}
	}()
	e.vm = G.NewTapeMachine(e.graph.g)
	if err := waitForEngines(e.vm); err != nil {
		return err
	}
	cm, ok := e.vm.(G.CUDAMachine)
	if !ok || len(cm.Engines()) == 0 {
		return errors.New("Gorgonia's machine runs nothing on the GPU")
	}
	e.run.ctx = cm.Engines()[0].Context().CUDAContext()
	return e.run.setup(initial)
}

// do runs one public call: one at a time, on an open, healthy engine. A
// device error leaves the GPU's state unknown, so it is remembered and
// every later call fails with it; input errors are just returned. Its work
// goes to the legacy stream, after the captured steps queued so far.
func (e *graphEngine) do(fn func() error) error {
	return e.call(true, fn)
}

// call is do; legacy says that fn works on the legacy default stream, so
// that the captured steps queued so far must finish first.
func (e *graphEngine) call(legacy bool, fn func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("gorgonia cuda: the engine is closed")
	}
	if e.broken != nil {
		return fmt.Errorf("gorgonia cuda: unusable after an earlier device error: %w", e.broken)
	}
	if legacy {
		inner := fn
		fn = func() error {
			if err := e.afterCaptured(); err != nil {
				return err
			}
			return inner()
		}
	}
	err := fn()
	if err == nil {
		return nil
	}
	var ce cudaError
	if errors.As(err, &ce) || errors.Is(err, errRun) {
		e.broken = err
	}
	return fmt.Errorf("gorgonia cuda: %w", err)
}

// afterCaptured waits for the captured steps queued so far, before work on
// the legacy stream. Called inside call.
func (e *graphEngine) afterCaptured() error {
	c := e.run.capture
	if c == nil {
		return nil
	}
	return e.run.onDevice(c.beforeLegacy)
}

// errRun marks a failed run of the program: some of its work may have
// been done.
var errRun = errors.New("running the program")

// runProgram runs the program once as set up in e.run.
func (e *graphEngine) runProgram() error {
	e.vm.Reset()
	if err := e.vm.RunAll(); err != nil {
		return fmt.Errorf("%w: %v", errRun, err)
	}
	return nil
}

func (e *graphEngine) Load(id model.DataID, set *data.Set) error {
	if err := checkUploadable(id, set); err != nil {
		return fmt.Errorf("gorgonia cuda: %w", err)
	}
	return e.do(func() error {
		return e.run.onDevice(func() error {
			if old := e.sets[id]; old != nil {
				delete(e.sets, id)
				if err := old.free(&e.run.mem); err != nil {
					return err
				}
			}
			if id == model.TrainSet {
				if err := e.run.loop.dropOrder(&e.run.mem); err != nil {
					return err
				}
			}
			ds, err := uploadSet(&e.run.mem, set)
			if err != nil {
				return err
			}
			e.sets[id] = ds
			return nil
		})
	})
}

// useBatch uploads idx (checked against set id) and points the next run at
// it. Called inside do.
func (e *graphEngine) useBatch(id model.DataID, idx []int, training bool) error {
	ds := e.sets[id]
	if ds == nil {
		return fmt.Errorf("the %v was never loaded", id)
	}
	if err := model.CheckBatch(idx, e.cfg.BatchSize, ds.n); err != nil {
		return err
	}
	host := e.hostIdx[:len(idx)]
	for r, i := range idx {
		host[r] = int32(i) // i < set.Len() <= MaxInt32 (checked at Load)
	}
	r := e.run
	r.training, r.set, r.batchIdx, r.rows = training, ds, r.idx, len(idx)
	return r.onDevice(func() error { return upload("batch indices", r.idx, host) })
}

// Step trains on images idx of the training set and reads back their
// losses and hits. The training loop uses StepAt instead, which reads
// nothing back.
func (e *graphEngine) Step(idx []int) (model.StepResult, error) {
	var res model.StepResult
	err := e.do(func() error {
		if err := e.useBatch(model.TrainSet, idx, true); err != nil {
			return err
		}
		if err := e.runProgram(); err != nil {
			return err
		}
		return e.run.onDevice(func() (err error) {
			res, err = readStepResult(e.hostStat[:2*len(idx)], e.run.stats)
			return err
		})
	})
	return res, err
}

// SetOrder uploads the epoch's image order.
func (e *graphEngine) SetOrder(order []int) error {
	return e.do(func() error {
		n := 0
		if ds := e.sets[model.TrainSet]; ds != nil {
			n = ds.n
		}
		host, err := checkOrder(order, n)
		if err != nil {
			return err
		}
		if c := e.run.capture; c != nil {
			c.nextLo = -1
		}
		return e.run.onDevice(func() error { return e.run.loop.setOrder(&e.run.mem, host) })
	})
}

// StepAt trains on order[lo:hi] of the order last set. It queues the
// step's work on the GPU and returns without waiting for it: one replay of
// the captured step for a full batch, else a run of the program.
func (e *graphEngine) StepAt(lo, hi int) error {
	return e.call(false, func() error {
		r := e.run
		ds, at, err := r.loop.trainingBatch(e.sets, lo, hi, e.cfg.BatchSize)
		if err != nil {
			return err
		}
		if r.capture != nil && hi-lo == e.cfg.BatchSize {
			done, err := e.capturedStep(ds, lo, hi)
			if done || err != nil {
				return err
			}
			// The capture failed and is off for good: this step runs
			// as below.
		}
		if err := e.afterCaptured(); err != nil {
			return err
		}
		r.training, r.set, r.batchIdx, r.rows = true, ds, at, hi-lo
		return e.runProgram()
	})
}

// Totals reads the running loss and hits: it waits for the queued steps.
func (e *graphEngine) Totals() (lossSum float64, hits int, err error) {
	err = e.do(func() error {
		return e.run.onDevice(func() (err error) {
			lossSum, hits, err = e.run.loop.readTotals()
			return err
		})
	})
	return lossSum, hits, err
}

// SetTotals starts the running totals at lossSum and hits.
func (e *graphEngine) SetTotals(lossSum float64, hits int) error {
	if err := checkTotals(hits); err != nil {
		return fmt.Errorf("gorgonia cuda: %w", err)
	}
	return e.do(func() error {
		return e.run.onDevice(func() error { return e.run.loop.writeTotals(lossSum, hits) })
	})
}

// Forward runs the program forward only on images idx of set id and
// copies the log-probabilities back.
func (e *graphEngine) Forward(id model.DataID, idx []int, logProbs []float64) error {
	if len(logProbs) < len(idx)*classes {
		return fmt.Errorf("gorgonia cuda: forward: room for %d log-probabilities, need %d", len(logProbs), len(idx)*classes)
	}
	return e.do(func() error {
		if err := e.useBatch(id, idx, false); err != nil {
			return err
		}
		if err := e.runProgram(); err != nil {
			return err
		}
		lp := e.hostLP[:len(idx)*classes]
		if err := e.run.onDevice(func() error { return download("log-probabilities", lp, e.run.logProbs) }); err != nil {
			return err
		}
		for i, v := range lp {
			logProbs[i] = float64(v)
		}
		return nil
	})
}

// Finite counts the non-finite parameters on the GPU; one int comes back.
func (e *graphEngine) Finite() (bool, error) {
	count := []int32{0}
	err := e.do(func() error {
		r := e.run
		return r.onDevice(func() error {
			if err := r.k.launchBlocks(kCountNonFinite, 1,
				argPtr(r.params), argInt(r.layout.total), argPtr(r.nonFinite)); err != nil {
				return err
			}
			return download("non-finite count", count, r.nonFinite)
		})
	})
	return count[0] == 0, err
}

// State downloads the parameters and the optimizer's slots.
func (e *graphEngine) State() (model.State, error) {
	r := e.run
	var host [][]float32
	var step int64
	err := e.do(func() error {
		step = r.step
		return r.onDevice(func() (err error) {
			host, err = downloadState(r.layout, r.params, r.slots)
			return err
		})
	})
	if err != nil {
		return model.State{}, err
	}
	return hostState(r.layout, e.cfg.Seed, r.opt.name(), step, host[0], host[1:])
}

// SetState checks s, then uploads it.
func (e *graphEngine) SetState(s model.State) error {
	r := e.run
	params, slots, step, err := flatState(r.layout, r.opt.name(), s)
	if err != nil {
		return fmt.Errorf("gorgonia cuda: %w", err)
	}
	return e.do(func() error {
		return r.onDevice(func() error {
			if err := uploadState(r.params, r.slots, params, slots); err != nil {
				return err
			}
			r.step = step
			if r.capture != nil {
				r.capture.stepsSet = false
			}
			return nil
		})
	})
}

// Program is Gorgonia's listing of the program the machine runs.
func (e *graphEngine) Program() (string, error) { return e.graph.programListing() }

// Close frees the device state and closes the machine (and its context).
// Calling it again does nothing.
func (e *graphEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.release(); err != nil {
		return fmt.Errorf("gorgonia cuda: %w", err)
	}
	return nil
}

func (e *graphEngine) release() error {
	var err error
	onOneThread(func() {
		err = e.run.release()
		if e.vm != nil {
			err = errors.Join(err, e.vm.Close())
		}
	})
	return err
}
