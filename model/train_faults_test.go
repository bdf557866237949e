package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"mnist/data"
)

// poisonEngine is an Engine whose loss stays finite while one parameter
// turns bad after a given step: only the parameter check can catch it.
type poisonEngine struct {
	params    *Params
	steps     int     // steps run so far
	poisonAt  int     // after this many steps, the parameter turns bad (0: never)
	tensor    int     // which of the six tensors
	index     int     // which number in it
	value     float64 // NaN or ±Inf
	finiteHit int     // calls of Finite
	stateHit  int     // calls of State
}

func newPoisonEngine(t *testing.T, poisonAt, tensor, index int, value float64) *poisonEngine {
	t.Helper()
	p, err := NewParams(DefaultConfig().Dtype, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &poisonEngine{params: p, poisonAt: poisonAt, tensor: tensor, index: index, value: value}
}

func (e *poisonEngine) Load(DataID, *data.Set) error { return nil }

func (e *poisonEngine) Step(idx []int) (StepResult, error) {
	e.steps++
	if e.steps == e.poisonAt {
		e.params.Tensors[e.tensor].Data().([]float32)[e.index] = float32(e.value)
	}
	return StepResult{Loss: 0.5, Hits: len(idx) / 2}, nil
}

func (e *poisonEngine) Finite() (bool, error) { e.finiteHit++; return e.params.finite(), nil }

func (e *poisonEngine) State() (State, error) { e.stateHit++; return State{Params: e.params}, nil }

func (e *poisonEngine) Forward(DataID, []int, []float64) error {
	return errors.New("poisonEngine: no forward pass")
}

func (e *poisonEngine) SetState(State) error {
	return errors.New("poisonEngine: parameters are set at construction")
}

func (e *poisonEngine) Close() error { return nil }

// TestFitChecksParameters: a parameter that turns NaN or infinite while the
// loss stays finite stops training at the next check (every paramCheckEvery
// steps and at each epoch's end), with an error naming the epoch, the step,
// the parameter and the learning rate.
func TestFitChecksParameters(t *testing.T) {
	const images = 1200 // batch 1: 1,200 steps an epoch, checked at 500, 1000, 1200
	tests := []struct {
		name      string
		poisonAt  int // global step after which the parameter is bad; 0: never
		tensor    int
		index     int
		value     float64
		wantEpoch int
		wantStep  int // 0: no error
	}{
		{name: "finite all along", wantEpoch: 0},
		{name: "NaN weight early", poisonAt: 3, tensor: 0, index: 1234, value: math.NaN(), wantEpoch: 1, wantStep: paramCheckEvery},
		{name: "NaN on a check step", poisonAt: 2 * paramCheckEvery, tensor: 2, index: 7, value: math.NaN(), wantEpoch: 1, wantStep: 2 * paramCheckEvery},
		{name: "+Inf bias at the end of an epoch", poisonAt: 1100, tensor: 5, index: 9, value: math.Inf(1), wantEpoch: 1, wantStep: images},
		{name: "-Inf weight in epoch 2", poisonAt: images + 1, tensor: 4, index: 0, value: math.Inf(-1), wantEpoch: 2, wantStep: paramCheckEvery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Epochs, cfg.BatchSize, cfg.Optimizer.LearningRate = 2, 1, 0.0125
			b := newPoisonEngine(t, tt.poisonAt, tt.tensor, tt.index, tt.value)
			tr, err := NewTrainer(cfg, b, &data.Set{Images: make([]byte, images*data.ImageSize), Labels: make([]byte, images)})
			if err != nil {
				t.Fatal(err)
			}
			history, err := tr.Fit(context.Background(), Hooks{})
			if tt.wantStep == 0 {
				if err != nil {
					t.Fatalf("finite parameters: %v", err)
				}
				// Two epochs of checks at 500, 1000 and 1200: six questions,
				// and the parameters never copied out.
				if b.finiteHit != 6 || b.stateHit != 0 {
					t.Errorf("Finite asked %d times and State %d times in 2 epochs of %d steps, want 6 and 0", b.finiteHit, b.stateHit, images)
				}
				return
			}
			if !errors.Is(err, ErrDiverged) {
				t.Fatalf("Fit = %v, want an error wrapping ErrDiverged", err)
			}
			if b.steps != (tt.wantEpoch-1)*images+tt.wantStep {
				t.Errorf("training ran %d steps, want it stopped at epoch %d step %d", b.steps, tt.wantEpoch, tt.wantStep)
			}
			if len(history) != tt.wantEpoch-1 {
				t.Errorf("%d epochs of history, want %d", len(history), tt.wantEpoch-1)
			}
			msg := err.Error()
			for _, want := range []string{
				fmt.Sprintf("epoch %d step %d:", tt.wantEpoch, tt.wantStep),
				fmt.Sprintf("%s[%d] is %v", ParamNames()[tt.tensor], tt.index, tt.value),
				"learning rate 0.0125",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

// TestDivergenceNamesEpochStepAndRate trains the real graph with an absurd
// learning rate: training must stop with ErrDiverged, and the message must
// say where and with which rate.
func TestDivergenceNamesEpochStepAndRate(t *testing.T) {
	cfg := shortConfig()
	cfg.Optimizer.LearningRate = 1e30
	tr, _ := newTestTrainer(t, cfg, syntheticSet(640, 1))
	steps := 0
	_, err := tr.Fit(context.Background(), Hooks{Step: func(StepStats) { steps++ }})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Fit with lr 1e30 = %v, want ErrDiverged", err)
	}
	if !strings.Contains(err.Error(), "epoch 1 step ") || !strings.Contains(err.Error(), "learning rate 1e+30") {
		t.Errorf("error %q does not name the epoch, step and learning rate", err)
	}
	// The bad step itself is not reported as progress.
	if steps >= 20 {
		t.Errorf("%d steps reported after divergence; training should stop at once", steps)
	}
	t.Log(err)
}

// BenchmarkParamCheck is the cost of one parameter check on the CPU graph
// engine; compare with BenchmarkTrainStep × paramCheckEvery.
func BenchmarkParamCheck(b *testing.B) {
	cfg := DefaultConfig()
	tr, err := NewTrainer(cfg, newTestEngine(b, cfg), syntheticSet(64, 1))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := tr.checkParams(); err != nil {
			b.Fatal(err)
		}
	}
}
