package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
)

// StepStats is what a progress display needs after each step.
type StepStats struct {
	Epoch, Step, Steps int     // 1-based epoch and step, steps per epoch
	Loss, Accuracy     float64 // running means over the epoch so far
}

// EpochStats summarises one finished epoch.
type EpochStats struct {
	Epoch    int
	Loss     float64 // mean training loss per image over the epoch
	Accuracy float64 // fraction of training images classified right, in-pass
	Seconds  float64
}

// Hooks let the caller watch training. Any of them may be nil.
type Hooks struct {
	EpochStart func(epoch, steps int)
	Step       func(StepStats)
	EpochEnd   func(EpochStats)
}

// Trainer owns the parameters, the optimiser and the compiled training
// graph. Close it when done.
type Trainer struct {
	cfg     Config
	params  *Params
	opt     *adam
	graph   *graph
	shuffle *rand.Rand
	vmOpts  []G.VMOpt
}

// NewTrainer initialises the network for cfg and compiles its training
// graph with the given tape-machine options (from package gpu).
func NewTrainer(cfg Config, vmOpts ...G.VMOpt) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	params, err := NewParams(cfg.Dtype, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("initialise parameters: %w", err)
	}
	gr, err := buildGraph(cfg.Dtype, cfg.BatchSize, true, vmOpts)
	if err != nil {
		return nil, fmt.Errorf("build training graph: %w", err)
	}
	if err := gr.bindParams(params); err != nil {
		gr.Close()
		return nil, err
	}
	return &Trainer{
		cfg:    cfg,
		params: params,
		opt:    newAdam(cfg, params),
		graph:  gr,
		// The shuffle stream is seeded apart from the initialisation stream.
		shuffle: rand.New(rand.NewPCG(cfg.Seed, 0x73687566666c65)), // "shuffle"
		vmOpts:  vmOpts,
	}, nil
}

// Params returns the live parameters. They change as training proceeds.
func (t *Trainer) Params() *Params { return t.params }

// Close releases the compiled graph.
func (t *Trainer) Close() error { return t.graph.Close() }

// Fit trains for cfg.Epochs passes over set, reshuffling before each pass.
// It stops early, returning ctx's error, when ctx is cancelled; the epochs
// finished by then are returned either way.
func (t *Trainer) Fit(ctx context.Context, set *data.Set, hooks Hooks) ([]EpochStats, error) {
	n := set.Len()
	if t.cfg.BatchSize > n {
		return nil, fmt.Errorf("batch size %d is larger than the training set (%d images)", t.cfg.BatchSize, n)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	steps := (n + t.cfg.BatchSize - 1) / t.cfg.BatchSize
	var history []EpochStats
	for epoch := 1; epoch <= t.cfg.Epochs; epoch++ {
		t.shuffle.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		if hooks.EpochStart != nil {
			hooks.EpochStart(epoch, steps)
		}
		stats, err := t.epoch(ctx, set, order, epoch, steps, hooks)
		if err != nil {
			return history, err
		}
		history = append(history, stats)
		if hooks.EpochEnd != nil {
			hooks.EpochEnd(stats)
		}
	}
	return history, nil
}

func (t *Trainer) epoch(ctx context.Context, set *data.Set, order []int, epoch, steps int, hooks Hooks) (EpochStats, error) {
	start := time.Now()
	var lossSum float64
	var correct, seen int
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, err
		}
		lo := (step - 1) * t.cfg.BatchSize
		idx := order[lo:min(lo+t.cfg.BatchSize, len(order))]
		loss, hits, err := t.step(set, idx)
		if err != nil {
			return EpochStats{}, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return EpochStats{}, fmt.Errorf("epoch %d step %d: loss is %v with learning rate %g: training diverged", epoch, step, loss, t.cfg.LearningRate)
		}
		lossSum += loss * float64(len(idx))
		correct += hits
		seen += len(idx)
		if hooks.Step != nil {
			hooks.Step(StepStats{Epoch: epoch, Step: step, Steps: steps,
				Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen)})
		}
	}
	return EpochStats{
		Epoch:    epoch,
		Loss:     lossSum / float64(seen),
		Accuracy: float64(correct) / float64(seen),
		Seconds:  time.Since(start).Seconds(),
	}, nil
}

// step runs forward and backward on the images at idx and applies Adam. It
// returns the batch's mean loss and how many images it classified right
// (before the update, as Keras reports it).
func (t *Trainer) step(set *data.Set, idx []int) (float64, int, error) {
	gr := t.graph
	if err := loadBatch(gr, set, idx); err != nil {
		return 0, 0, err
	}
	if err := gr.run(); err != nil {
		return 0, 0, fmt.Errorf("run graph: %w", err)
	}
	var grads [6]*tensor.Dense
	for i, gn := range gr.grads {
		d, ok := gn.Value().(*tensor.Dense)
		if !ok {
			return 0, 0, fmt.Errorf("gradient of %s is %T, want a dense tensor", ParamNames()[i], gn.Value())
		}
		grads[i] = d
	}
	loss, err := scalar(gr.loss.Value())
	if err != nil {
		return 0, 0, fmt.Errorf("read loss: %w", err)
	}
	hits, _ := scoreRows(gr.logProbs.Value(), set, idx)
	if err := t.opt.update(t.params, grads); err != nil {
		return 0, 0, err
	}
	return loss, hits, nil
}

// loadBatch copies the images at idx into the graph's input buffers, padding
// the rows past len(idx) with zeros, and sets the real-row count.
func loadBatch(gr *graph, set *data.Set, idx []int) error {
	switch x := gr.xT.Data().(type) {
	case []float32:
		y := gr.yT.Data().([]float32)
		fillPadded(set, idx, x, y)
	case []float64:
		y := gr.yT.Data().([]float64)
		fillPadded(set, idx, x, y)
	default:
		return fmt.Errorf("unsupported input dtype %v", gr.xT.Dtype())
	}
	return gr.setCount(len(idx))
}

func fillPadded[T float32 | float64](set *data.Set, idx []int, x, y []T) {
	rows := len(idx)
	data.FillBatch(set, idx, x[:rows*Inputs], y[:rows*Classes])
	clear(x[rows*Inputs:])
	clear(y[rows*Classes:])
}

func scalar(v G.Value) (float64, error) {
	if v == nil {
		return 0, fmt.Errorf("no value")
	}
	switch d := v.Data().(type) {
	case float32:
		return float64(d), nil
	case float64:
		return d, nil
	case []float32:
		if len(d) == 1 {
			return float64(d[0]), nil
		}
	case []float64:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("value %v is not a scalar", v)
}
