package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

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

// ErrDiverged is wrapped by the error Fit returns when the loss or a
// parameter has become NaN or infinite.
const ErrDiverged = trainError("training diverged")

// trainError is a string type so that ErrDiverged can be a constant (no
// package-level mutable state) and still be matched with errors.Is.
type trainError string

func (e trainError) Error() string { return string(e) }

// paramCheckEvery is how many steps pass between checks of every parameter
// for NaN and Inf; each epoch's last step is checked too. The loss is
// checked after every step, but a parameter can go bad while the loss stays
// finite (an Inf weight behind a ReLU that is never active, say), and a
// model with such a weight must not be reported as trained. A check reads
// 109,386 numbers, about a fiftieth of a CPU step, and on a GPU backend it
// copies the parameters to the host: every 500 steps that costs nothing
// measurable.
const paramCheckEvery = 500

// Trainer runs the training loop (epochs, per-epoch shuffle, progress,
// divergence checks) over a Backend, which does the arithmetic.
type Trainer struct {
	cfg     Config
	backend Backend
	shuffle *rand.Rand
}

// NewTrainer trains with backend according to cfg.
func NewTrainer(cfg Config, backend Backend) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Trainer{
		cfg:     cfg,
		backend: backend,
		// Seeded apart from the weight initialisation stream.
		shuffle: rand.New(rand.NewPCG(cfg.Seed, 0x73687566666c65)), // "shuffle"
	}, nil
}

// Fit trains for cfg.Epochs passes over set, reshuffling before each pass.
// It stops early, returning ctx's error, when ctx is cancelled, and at once,
// with an error wrapping ErrDiverged that names the epoch, step and learning
// rate, when the loss or a parameter becomes NaN or infinite. The epochs
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
		res, err := t.backend.Step(set, idx)
		if err != nil {
			return EpochStats{}, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
		}
		if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
			return EpochStats{}, fmt.Errorf("epoch %d step %d: loss is %v with learning rate %g: %w", epoch, step, res.Loss, t.cfg.LearningRate, ErrDiverged)
		}
		if step%paramCheckEvery == 0 || step == steps {
			if err := t.checkParams(); err != nil {
				return EpochStats{}, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
			}
		}
		lossSum += res.Loss * float64(len(idx))
		correct += res.Hits
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

// checkParams reports the first parameter that is NaN or infinite.
func (t *Trainer) checkParams() error {
	p, err := t.backend.Params()
	if err != nil {
		return fmt.Errorf("read the parameters to check them: %w", err)
	}
	for i, tensor := range p.Tensors {
		var at int
		var v float64
		switch data := tensor.Data().(type) {
		case []float32:
			at, v = firstNonFinite(data)
		case []float64:
			at, v = firstNonFinite(data)
		default:
			return fmt.Errorf("check %s: unsupported dtype %v", ParamNames()[i], tensor.Dtype())
		}
		if at >= 0 {
			return fmt.Errorf("parameter %s[%d] is %v with learning rate %g: %w", ParamNames()[i], at, v, t.cfg.LearningRate, ErrDiverged)
		}
	}
	return nil
}

// firstNonFinite returns the index and value of the first NaN or ±Inf in xs,
// or -1. x-x is 0 for every finite x and NaN for NaN and ±Inf, which keeps
// the loop to one subtraction and one compare per number.
func firstNonFinite[T float32 | float64](xs []T) (int, float64) {
	for i, x := range xs {
		if x-x != 0 {
			return i, float64(x)
		}
	}
	return -1, 0
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
