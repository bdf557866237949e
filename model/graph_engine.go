package model

import (
	"fmt"
	"reflect"
	"runtime"

	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model/kernels"
)

// graphEngine runs the network as Gorgonia graphs on a tape machine: one
// graph with gradients for training, one forward-only graph for Forward,
// both reading the same parameter tensors, and the optimizer on those host
// tensors: the CPU's engine. (The cuda build's Gorgonia engine, in gpu/,
// is a graph of ops with a CUDA side.)
type graphEngine struct {
	cfg    Config
	params *Params
	opt    hostOptimizer
	train  *graph
	eval   *graph // built on first use
	opts   graphOptions
	sets   [numDataIDs]*data.Set
}

// GraphOption adjusts the graphs of NewGraphEngine.
type GraphOption func(*graphOptions)

type graphOptions struct {
	prune bool
	fused bool
	crew  *kernels.Crew // set by NewGraphEngine
}

// WithPrunedProgram compiles only the instructions the results need,
// leaving out the unused gradient with respect to the input images.
func WithPrunedProgram() GraphOption {
	return func(o *graphOptions) { o.prune = true }
}

// WithFusedOps builds the graphs from the fused CPU ops of fused.go instead
// of Gorgonia's stock ops: the same results, bit for bit, in fewer and
// cheaper instructions. They run on the CPU only, and need float32.
func WithFusedOps() GraphOption {
	return func(o *graphOptions) { o.fused = true }
}

// NewGraphEngine initialises the parameters for cfg (glorot-uniform from
// cfg.Seed), starts the optimizer cfg names and compiles the training graph.
func NewGraphEngine(cfg Config, options ...GraphOption) (Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var opts graphOptions
	for _, o := range options {
		o(&opts)
	}
	useFastBLAS()
	params, err := NewParams(cfg.Dtype, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("initialise parameters: %w", err)
	}
	// One helper per core besides the caller's, shared by the fused ops'
	// matrix products and by the optimizer, and stopped by Close.
	opts.crew = kernels.NewCrew(crewHelpers(cfg.BatchSize, runtime.GOMAXPROCS(0)))
	opt, err := newHostOptimizer(cfg.Optimizer, params, opts.crew)
	if err != nil {
		opts.crew.Close()
		return nil, err
	}
	gr, err := buildGraph(cfg.Dtype, cfg.BatchSize, true, opts)
	if err != nil {
		opts.crew.Close()
		return nil, fmt.Errorf("build training graph: %w", err)
	}
	if err := gr.bindParams(params); err != nil {
		gr.Close()
		opts.crew.Close()
		return nil, err
	}
	return &graphEngine{cfg: cfg, params: params, opt: opt, train: gr, opts: opts}, nil
}

// minSharedBatch is the smallest batch whose matrix products are worth
// sharing with helpers on other cores. At batch 32 a product takes a few
// microseconds, about what it costs to hand half of it to another core and
// wait: 5 epochs took 1.3× as long even with only Adam shared, while one
// epoch took about as long at batch 256 and 0.8× as long at 2048
// (docs/performance.md).
const minSharedBatch = 256

// crewHelpers is how many helper goroutines share the products: one per
// core besides the caller's, for batches large enough to pay for it.
func crewHelpers(batch, procs int) int {
	if batch < minSharedBatch {
		return 0
	}
	return max(procs-1, 0)
}

func (e *graphEngine) Load(id DataID, set *data.Set) error {
	if id < 0 || id >= numDataIDs {
		return fmt.Errorf("load: unknown data set %d", id)
	}
	if err := CheckSet(set); err != nil {
		return fmt.Errorf("load %v: %w", id, err)
	}
	e.sets[id] = set
	return nil
}

// loaded returns the set held under id and checks idx against it.
func (e *graphEngine) loaded(id DataID, idx []int) (*data.Set, error) {
	if id < 0 || id >= numDataIDs || e.sets[id] == nil {
		return nil, fmt.Errorf("the %v was never loaded", id)
	}
	set := e.sets[id]
	if err := CheckBatch(idx, e.cfg.BatchSize, set.Len()); err != nil {
		return nil, err
	}
	return set, nil
}

func (e *graphEngine) Step(idx []int) (StepResult, error) {
	set, err := e.loaded(TrainSet, idx)
	if err != nil {
		return StepResult{}, err
	}
	if err := loadBatch(e.train, set, idx); err != nil {
		return StepResult{}, err
	}
	if err := e.train.run(); err != nil {
		return StepResult{}, fmt.Errorf("run training graph: %w", err)
	}
	hits, lossSum, err := scoreRows(e.train.logProbs.Value(), set, idx, nil)
	if err != nil {
		return StepResult{}, err
	}
	var grads [6]*tensor.Dense
	for i := range grads {
		if grads[i], err = e.train.grad(i); err != nil {
			return StepResult{}, err
		}
	}
	if err := e.opt.update(e.params, grads); err != nil {
		return StepResult{}, err
	}
	return StepResult{Loss: lossSum / float64(len(idx)), Hits: hits}, nil
}

func (e *graphEngine) Forward(id DataID, idx []int, logProbs []float64) error {
	set, err := e.loaded(id, idx)
	if err != nil {
		return err
	}
	if len(logProbs) < len(idx)*Classes {
		return fmt.Errorf("forward: room for %d log-probabilities, need %d", len(logProbs), len(idx)*Classes)
	}
	if err := e.ensureEvalGraph(); err != nil {
		return err
	}
	if err := loadBatch(e.eval, set, idx); err != nil {
		return err
	}
	if err := e.eval.run(); err != nil {
		return fmt.Errorf("run evaluation graph: %w", err)
	}
	v := e.eval.logProbs.Value()
	if v == nil {
		return fmt.Errorf("no log-probabilities computed")
	}
	switch lp := v.Data().(type) {
	case []float32:
		for i := range len(idx) * Classes {
			logProbs[i] = float64(lp[i])
		}
	case []float64:
		copy(logProbs, lp[:len(idx)*Classes])
	default:
		return fmt.Errorf("log-probabilities are %T, want float32 or float64", lp)
	}
	return nil
}

// Finite reads the host parameters in place: on the CPU nothing is copied,
// and under Gorgonia's CUDA engine the parameters live on the host anyway.
func (e *graphEngine) Finite() (bool, error) {
	return e.params.finite(), nil
}

// State returns copies: the live tensors keep changing with every step.
func (e *graphEngine) State() (State, error) {
	p, err := e.params.Clone()
	if err != nil {
		return State{}, err
	}
	return State{Params: p, Optimizer: e.opt.state()}, nil
}

// SetState checks everything before changing anything, converting the
// parameters to the engine's dtype.
func (e *graphEngine) SetState(s State) error {
	if err := checkShapes(s.Params, e.params); err != nil {
		return err
	}
	opt := s.Optimizer
	if opt == nil {
		var err error
		if opt, err = NewOptimizerState(e.cfg.Optimizer.Name); err != nil {
			return err
		}
	}
	if opt.Name != e.cfg.Optimizer.Name {
		return fmt.Errorf("set state: the optimizer state is %s's, this engine trains with %s", opt.Name, e.cfg.Optimizer.Name)
	}
	if err := opt.Check(); err != nil {
		return fmt.Errorf("set state: %w", err)
	}
	if err := e.params.SetFloat64s(s.Params.Float64s()); err != nil {
		return err
	}
	e.opt.setState(opt)
	return nil
}

func (e *graphEngine) Close() error {
	defer e.opts.crew.Close()
	err := e.train.Close()
	if e.eval != nil {
		if err2 := e.eval.Close(); err == nil {
			err = err2
		}
	}
	return err
}

// ensureEvalGraph builds the forward-only graph on first use.
func (e *graphEngine) ensureEvalGraph() error {
	if e.eval != nil {
		return nil
	}
	gr, err := buildGraph(e.cfg.Dtype, e.cfg.BatchSize, false, e.opts)
	if err != nil {
		return fmt.Errorf("build evaluation graph: %w", err)
	}
	if err := gr.bindParams(e.params); err != nil {
		gr.Close()
		return err
	}
	e.eval = gr
	return nil
}

// Program is Gorgonia's listing of the training program the machine runs:
// every instruction with the registers it reads and writes. In the cuda
// build the registers name the device holding each value, and the memcpy
// instructions are the device↔host copies of one step.
func (e *graphEngine) Program() (string, error) {
	// The tape machine's Prog method returns an unexported type, so it is
	// reached by name; its String method is the listing.
	prog := reflect.ValueOf(e.train.vm).MethodByName("Prog")
	if !prog.IsValid() {
		return "", fmt.Errorf("machine %T does not expose its program", e.train.vm)
	}
	listing, ok := prog.Call(nil)[0].Interface().(fmt.Stringer)
	if !ok {
		return "", fmt.Errorf("program of %T cannot be listed", e.train.vm)
	}
	return listing.String(), nil
}
