package model

import (
	"context"
	"errors"
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
	// Checkpoint is called after EpochEnd with the trainer's state at the
	// end of the epoch; an error stops Fit. The engine's parameters and
	// optimizer state are those of the same moment, so a checkpoint hook
	// reads them from the engine.
	Checkpoint func(TrainState) error
}

// TrainState is where the training loop stands, beyond what the engine
// holds (weights, optimizer state): enough to carry on exactly as if never stopped.
//
// Epoch epochs are finished; Step steps of epoch Epoch+1 are done too
// (0 at an epoch boundary), with LossSum, Correct and Seen the running
// totals of those steps. Order and Shuffle are the image order and the
// shuffle generator's state (a marshalled rand.PCG) from before epoch
// Epoch+1 was shuffled: the order is shuffled in place every epoch, so it
// is kept as well as the generator. Resuming reshuffles with them, which
// gives the interrupted epoch's order again, and skips the Step steps done.
type TrainState struct {
	Epoch, Step   int
	LossSum       float64
	Correct, Seen int
	Order         []int
	Shuffle       []byte
}

// ErrDiverged is wrapped by the error Fit returns when the loss or a
// parameter has become NaN or infinite.
var ErrDiverged = errors.New("training diverged")

// paramCheckEvery is how many steps pass between checks of every parameter
// for NaN and Inf; each epoch's last step is checked too. The loss is
// checked after every step, but a parameter can go bad while the loss stays
// finite (an Inf weight behind a ReLU that is never active, say), and a
// model with such a weight must not be reported as trained. A check reads
// 109,386 numbers where the engine keeps them, about a fiftieth of a CPU
// step: every 500 steps that costs nothing measurable.
const paramCheckEvery = 500

// Trainer runs the training loop (epochs, per-epoch shuffle, progress,
// divergence checks) over an Engine, which does the arithmetic. It keeps
// its position between calls of Fit, so that State can be saved after an
// interruption and Restore can put a new trainer at the same place.
type Trainer struct {
	cfg     Config
	engine  Engine
	n       int       // images in the training set
	pcg     *rand.PCG // the shuffle's source, kept to marshal its state
	shuffle *rand.Rand
	// order is the current image order, nil until the first Fit or
	// Restore. pos is the position; while inEpoch, its Order and Shuffle
	// are the snapshot from before the current epoch's shuffle.
	order   []int
	pos     TrainState
	inEpoch bool
	// trained counts the images this trainer has stepped through, over all
	// its Fit calls: what a speed figure must divide by, since a resumed or
	// interrupted run trains only part of an epoch.
	trained int
}

// NewTrainer trains engine on train according to cfg; it hands the set to
// the engine as its TrainSet.
func NewTrainer(cfg Config, engine Engine, train *data.Set) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := train.Len()
	if cfg.BatchSize > n {
		return nil, fmt.Errorf("batch size %d is larger than the training set (%d images)", cfg.BatchSize, n)
	}
	if err := engine.Load(TrainSet, train); err != nil {
		return nil, err
	}
	// Seeded apart from the weight initialisation stream.
	pcg := rand.NewPCG(cfg.Seed, 0x73687566666c65) // "shuffle"
	return &Trainer{cfg: cfg, engine: engine, n: n, pcg: pcg, shuffle: rand.New(pcg)}, nil
}

// Trained is the number of images this trainer has trained on, over all
// its Fit calls (not counting steps done before a Restore).
func (t *Trainer) Trained() int { return t.trained }

// State returns a copy of the trainer's position. After Fit has returned
// because ctx was cancelled, it is the position after the last finished
// step, which the engine's parameters and optimizer state match.
func (t *Trainer) State() (TrainState, error) {
	s := t.pos
	if !t.inEpoch {
		rng, err := t.pcg.MarshalBinary()
		if err != nil {
			return TrainState{}, fmt.Errorf("save the shuffle state: %w", err)
		}
		s.Order, s.Shuffle = t.order, rng
	}
	s.Order = append([]int(nil), s.Order...)
	s.Shuffle = append([]byte(nil), s.Shuffle...)
	return s, nil
}

// Restore puts the trainer at s (from State, maybe of another trainer in
// another process); the next Fit carries on from there up to cfg.Epochs
// epochs in all. The engine's parameters and optimizer state must be
// restored with it. On an error the trainer is unchanged.
func (t *Trainer) Restore(s TrainState) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("restore training position: %w", err)
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(s.Shuffle); err != nil {
		return fmt.Errorf("restore training position: shuffle state: %w", err)
	}
	t.pcg, t.shuffle = pcg, rand.New(pcg)
	t.order = nil
	if s.Order != nil {
		t.order = append([]int(nil), s.Order...)
	}
	t.pos = TrainState{Epoch: s.Epoch, Step: s.Step, LossSum: s.LossSum, Correct: s.Correct, Seen: s.Seen}
	t.inEpoch = false
	return nil
}

// check reports the first field of s that no training run can produce.
func (s TrainState) check() error {
	switch {
	case s.Epoch < 0 || s.Step < 0:
		return fmt.Errorf("epoch %d step %d is negative", s.Epoch, s.Step)
	case s.Seen < 0 || s.Correct < 0 || s.Correct > s.Seen:
		return fmt.Errorf("%d right of %d seen is impossible", s.Correct, s.Seen)
	case math.IsNaN(s.LossSum) || math.IsInf(s.LossSum, 0) || s.LossSum < 0:
		return fmt.Errorf("loss sum is %v", s.LossSum)
	}
	seen := make([]bool, len(s.Order))
	for _, i := range s.Order {
		if i < 0 || i >= len(seen) || seen[i] {
			return fmt.Errorf("the image order is not a permutation of 0..%d", len(seen)-1)
		}
		seen[i] = true
	}
	return nil
}

// Fit trains up to cfg.Epochs passes over the training set in all, counting those done
// before a Restore, reshuffling before each pass. It stops early, returning
// ctx's error, when ctx is cancelled, and at once, with an error wrapping
// ErrDiverged that names the epoch, step and learning rate, when the loss or
// a parameter becomes NaN or infinite. The epochs finished by this call are
// returned either way.
func (t *Trainer) Fit(ctx context.Context, hooks Hooks) ([]EpochStats, error) {
	n := t.n
	if t.inEpoch {
		// Stopped mid-epoch by an earlier call: go back to that epoch's
		// snapshot, so that its reshuffle gives the same order again.
		s, err := t.State()
		if err != nil {
			return nil, err
		}
		if err := t.Restore(s); err != nil {
			return nil, err
		}
	}
	if t.order == nil {
		t.order = make([]int, n)
		for i := range t.order {
			t.order[i] = i
		}
	}
	if len(t.order) != n {
		return nil, fmt.Errorf("the training position is for %d images, the training set has %d", len(t.order), n)
	}
	steps := (n + t.cfg.BatchSize - 1) / t.cfg.BatchSize
	if t.pos.Step >= steps {
		return nil, fmt.Errorf("the training position is step %d of epoch %d, which has only %d steps", t.pos.Step, t.pos.Epoch+1, steps)
	}
	var history []EpochStats
	for epoch := t.pos.Epoch + 1; epoch <= t.cfg.Epochs; epoch++ {
		rng, err := t.pcg.MarshalBinary()
		if err != nil {
			return history, fmt.Errorf("epoch %d: save the shuffle state: %w", epoch, err)
		}
		t.pos.Order, t.pos.Shuffle = append(t.pos.Order[:0], t.order...), rng
		t.inEpoch = true
		t.shuffle.Shuffle(n, func(i, j int) { t.order[i], t.order[j] = t.order[j], t.order[i] })
		if hooks.EpochStart != nil {
			hooks.EpochStart(epoch, steps)
		}
		stats, err := t.epoch(ctx, epoch, steps, hooks)
		if err != nil {
			return history, err
		}
		t.pos = TrainState{Epoch: epoch, Order: t.pos.Order[:0]}
		t.inEpoch = false
		history = append(history, stats)
		if hooks.EpochEnd != nil {
			hooks.EpochEnd(stats)
		}
		if hooks.Checkpoint != nil {
			s, err := t.State()
			if err == nil {
				err = hooks.Checkpoint(s)
			}
			if err != nil {
				return history, fmt.Errorf("epoch %d: checkpoint: %w", epoch, err)
			}
		}
	}
	return history, nil
}

// epoch runs the steps of one epoch after the t.pos.Step already done
// (before an interruption), keeping t.pos up to date: after every step
// for an engine that reports each one, and whenever the totals are read
// for a DeviceLoop engine, which is always before this returns.
func (t *Trainer) epoch(ctx context.Context, epoch, steps int, hooks Hooks) (EpochStats, error) {
	start := time.Now()
	p := &t.pos
	run := newStepRunner(t.engine)
	if err := run.begin(t.order, p); err != nil {
		return EpochStats{}, fmt.Errorf("epoch %d: %w", epoch, err)
	}
	// stepped is how far the engine has got, p.Step how far the totals
	// in p have: they differ only between two reads of a DeviceLoop's.
	stepped, seen := p.Step, p.Seen
	collect := func() error {
		if p.Step == stepped {
			return nil
		}
		if err := run.collect(p); err != nil {
			var bad badLoss
			if errors.As(err, &bad) {
				return fmt.Errorf("epoch %d step %d: %v with learning rate %g: %w", epoch, stepped, err, t.cfg.Optimizer.LearningRate, ErrDiverged)
			}
			return fmt.Errorf("epoch %d step %d: %w", epoch, stepped, err)
		}
		p.Step, p.Seen = stepped, seen
		if hooks.Step != nil {
			hooks.Step(StepStats{Epoch: epoch, Step: p.Step, Steps: steps,
				Loss: p.LossSum / float64(p.Seen), Accuracy: float64(p.Correct) / float64(p.Seen)})
		}
		return nil
	}
	for step := p.Step + 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			// The position saved after an interruption must match the
			// engine's parameters: everything stepped is counted.
			return EpochStats{}, errors.Join(err, collect())
		}
		lo := (step - 1) * t.cfg.BatchSize
		hi := min(lo+t.cfg.BatchSize, len(t.order))
		if err := run.step(t.order, lo, hi); err != nil {
			return EpochStats{}, stepFailure(fmt.Errorf("epoch %d step %d: %w", epoch, step, err), collect())
		}
		stepped, seen = step, seen+hi-lo
		t.trained += hi - lo
		checkParams := step%paramCheckEvery == 0 || step == steps
		if checkParams || run.due(step, steps) {
			if err := collect(); err != nil {
				return EpochStats{}, err
			}
		}
		if checkParams {
			if err := t.checkParams(); err != nil {
				return EpochStats{}, fmt.Errorf("epoch %d step %d: %w", epoch, step, err)
			}
		}
	}
	return EpochStats{
		Epoch:    epoch,
		Loss:     p.LossSum / float64(p.Seen),
		Accuracy: float64(p.Correct) / float64(p.Seen),
		Seconds:  time.Since(start).Seconds(),
	}, nil
}

// checkParams asks the engine whether every parameter is finite and, only
// when one is not, reads them to name it.
func (t *Trainer) checkParams() error {
	ok, err := t.engine.Finite()
	if err != nil {
		return fmt.Errorf("check the parameters: %w", err)
	}
	if ok {
		return nil
	}
	where := "a parameter is not finite"
	if s, err := t.engine.State(); err == nil {
		if name, at, v := s.Params.firstNonFiniteParam(); name != "" {
			where = fmt.Sprintf("parameter %s[%d] is %v", name, at, v)
		}
	}
	return fmt.Errorf("%s with learning rate %g: %w", where, t.cfg.Optimizer.LearningRate, ErrDiverged)
}

// stepFailure is a failed step's error, joined with the error of reading the
// running totals after it (which keeps the position saved after a failure
// true) unless that only repeats the step's cause: an engine broken by a
// device error refuses every later call with that error wrapped.
func stepFailure(stepErr, collectErr error) error {
	if collectErr == nil {
		return stepErr
	}
	for cause := errors.Unwrap(stepErr); cause != nil; cause = errors.Unwrap(cause) {
		if errors.Is(collectErr, cause) {
			return stepErr
		}
	}
	return errors.Join(stepErr, collectErr)
}
