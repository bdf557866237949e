package model

import (
	"fmt"
	"reflect"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model/kernels"
)

// graphBackend runs the network as Gorgonia graphs on a tape machine: one
// graph with gradients for training, one forward-only graph for evaluation,
// both reading the same parameter tensors. Which device runs the ops is
// decided by the machine options (none: the CPU).
type graphBackend struct {
	cfg    Config
	params *Params
	opt    *adam
	train  *graph
	eval   *graph // built on first use
	opts   graphOptions
}

// GraphOption adjusts the tape machines of NewGraphBackend.
type GraphOption func(*graphOptions)

type graphOptions struct {
	vmOpts []G.VMOpt
	ready  func(G.VM) error
	prune  bool
	fused  bool
	crew   *kernels.Crew // set by NewGraphBackend
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

// WithVMOptions passes options to every gorgonia.NewTapeMachine.
func WithVMOptions(opts ...G.VMOpt) GraphOption {
	return func(o *graphOptions) { o.vmOpts = append(o.vmOpts, opts...) }
}

// WithMachineReady calls ready with every new tape machine before its first
// run, for devices whose machines finish starting in the background.
func WithMachineReady(ready func(G.VM) error) GraphOption {
	return func(o *graphOptions) { o.ready = ready }
}

// NewGraphBackend initialises the parameters for cfg (glorot-uniform from
// cfg.Seed) and compiles the training graph.
func NewGraphBackend(cfg Config, options ...GraphOption) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var opts graphOptions
	for _, o := range options {
		o(&opts)
	}
	params, err := NewParams(cfg.Dtype, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("initialise parameters: %w", err)
	}
	// One helper per core besides the caller's, shared by the fused ops'
	// matrix products and by Adam, and stopped by Close.
	opts.crew = kernels.NewCrew(runtime.GOMAXPROCS(0) - 1)
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
	return &graphBackend{cfg: cfg, params: params, opt: newAdam(cfg, params, opts.crew), train: gr, opts: opts}, nil
}

func (b *graphBackend) Params() (*Params, error) { return b.params, nil }

// SetParams copies p's values into the live parameter tensors, which both
// graphs read, converting to the backend's dtype.
func (b *graphBackend) SetParams(p *Params) error {
	if err := checkShapes(p, b.params); err != nil {
		return err
	}
	return b.params.SetFloat64s(p.Float64s())
}

// OptimizerState returns a copy of Adam's state: the live slices keep
// changing with every step.
func (b *graphBackend) OptimizerState() (OptimizerState, error) {
	return b.opt.state(), nil
}

// SetOptimizerState copies s into Adam's state after checking its sizes, so
// that a bad checkpoint leaves the backend as it was.
func (b *graphBackend) SetOptimizerState(s OptimizerState) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("set optimizer state: %w", err)
	}
	b.opt.setState(s)
	return nil
}

func (b *graphBackend) Close() error {
	defer b.opts.crew.Close()
	err := b.train.Close()
	if b.eval != nil {
		if e := b.eval.Close(); err == nil {
			err = e
		}
	}
	return err
}

// forward runs the training graph on idx and scores the real rows from the
// log-probabilities, which every device leaves in host memory.
func (b *graphBackend) forward(set *data.Set, idx []int) (StepResult, error) {
	if err := loadBatch(b.train, set, idx); err != nil {
		return StepResult{}, err
	}
	if err := b.train.run(); err != nil {
		return StepResult{}, fmt.Errorf("run training graph: %w", err)
	}
	hits, lossSum, err := scoreRows(b.train.logProbs.Value(), set, idx, nil)
	if err != nil {
		return StepResult{}, err
	}
	return StepResult{Loss: lossSum / float64(len(idx)), Hits: hits}, nil
}

func (b *graphBackend) Step(set *data.Set, idx []int) (StepResult, error) {
	res, err := b.forward(set, idx)
	if err != nil {
		return StepResult{}, err
	}
	var grads [6]*tensor.Dense
	for i := range grads {
		if grads[i], err = b.train.grad(i); err != nil {
			return StepResult{}, err
		}
	}
	if err := b.opt.update(b.params, grads); err != nil {
		return StepResult{}, err
	}
	return res, nil
}

func (b *graphBackend) Probe(set *data.Set, idx []int) (Pass, error) {
	res, err := b.forward(set, idx)
	if err != nil {
		return Pass{}, err
	}
	p := Pass{Loss: res.Loss, LogProbs: toFloat64(b.train.logProbs.Value())[:len(idx)*Classes]}
	for i := range p.Grads {
		g, err := b.train.grad(i)
		if err != nil {
			return Pass{}, err
		}
		p.Grads[i] = toFloat64(g)
	}
	return p, nil
}

// Evaluate scores every image of set in order, in batches of the training
// batch size like Keras's evaluate. The last batch may be partial (16 of the
// 10,000 test images at batch 32); it is padded and only its real rows count.
func (b *graphBackend) Evaluate(set *data.Set) (Metrics, error) {
	if err := b.ensureEvalGraph(); err != nil {
		return Metrics{}, err
	}
	return evaluateBatches(set, b.cfg.BatchSize, func(idx []int, conf *Confusion) (int, float64, error) {
		if err := b.evalRun(set, idx); err != nil {
			return 0, 0, err
		}
		return scoreRows(b.eval.logProbs.Value(), set, idx, conf)
	})
}

// Predict returns the log-probabilities of every image of set, set.Len()×10,
// computed in batches like Evaluate.
func (b *graphBackend) Predict(set *data.Set) ([]float64, error) {
	if err := b.ensureEvalGraph(); err != nil {
		return nil, err
	}
	out := make([]float64, 0, set.Len()*Classes)
	_, err := evaluateBatches(set, b.cfg.BatchSize, func(idx []int, _ *Confusion) (int, float64, error) {
		if err := b.evalRun(set, idx); err != nil {
			return 0, 0, err
		}
		out = append(out, toFloat64(b.eval.logProbs.Value())[:len(idx)*Classes]...)
		return 0, 0, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ensureEvalGraph builds the forward-only graph on first use.
func (b *graphBackend) ensureEvalGraph() error {
	if b.eval != nil {
		return nil
	}
	gr, err := buildGraph(b.cfg.Dtype, b.cfg.BatchSize, false, b.opts)
	if err != nil {
		return fmt.Errorf("build evaluation graph: %w", err)
	}
	if err := gr.bindParams(b.params); err != nil {
		gr.Close()
		return err
	}
	b.eval = gr
	return nil
}

// evalRun runs the forward-only graph on the images at idx.
func (b *graphBackend) evalRun(set *data.Set, idx []int) error {
	if err := loadBatch(b.eval, set, idx); err != nil {
		return err
	}
	return b.eval.run()
}

// Program is Gorgonia's listing of the training program the machine runs:
// every instruction with the registers it reads and writes. In the cuda
// build the registers name the device holding each value, and the memcpy
// instructions are the device↔host copies of one step.
func (b *graphBackend) Program() (string, error) {
	// The tape machine's Prog method returns an unexported type, so it is
	// reached by name; its String method is the listing.
	prog := reflect.ValueOf(b.train.vm).MethodByName("Prog")
	if !prog.IsValid() {
		return "", fmt.Errorf("machine %T does not expose its program", b.train.vm)
	}
	listing, ok := prog.Call(nil)[0].Interface().(fmt.Stringer)
	if !ok {
		return "", fmt.Errorf("program of %T cannot be listed", b.train.vm)
	}
	return listing.String(), nil
}
