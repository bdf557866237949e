package model

import (
	"fmt"

	"mnist/data"
)

// Backend executes the network on some device: training steps, probes and
// evaluation. The Gorgonia graph (NewGraphBackend) is the one in this
// package; package gpu picks it or supplies another. The training loop in
// Trainer is the same whichever runs underneath.
type Backend interface {
	// Step runs forward, backward and one Adam update on the images at idx.
	Step(set *data.Set, idx []int) (StepResult, error)
	// Probe runs forward and backward on the images at idx, updating nothing.
	Probe(set *data.Set, idx []int) (Pass, error)
	// Evaluate scores the current parameters on every image of set.
	Evaluate(set *data.Set) (Metrics, error)
	// Predict returns the log-probabilities of every image of set, in
	// order: set.Len() rows of 10. The labels of set are not used.
	Predict(set *data.Set) ([]float64, error)
	// Params returns the current parameters in host memory.
	Params() (*Params, error)
	// SetParams replaces the parameters with p's values (e.g. loaded from a
	// file). The shapes must match; the optimiser's state is left as it is.
	SetParams(p *Params) error
	// OptimizerState copies Adam's moments and step count to host memory,
	// for checkpoints.
	OptimizerState() (OptimizerState, error)
	// SetOptimizerState replaces Adam's moments and step count with s's
	// (from a checkpoint), so that training carries on where it stopped.
	SetOptimizerState(s OptimizerState) error
	// Close releases the backend's memory and machines.
	Close() error
}

// StepResult is what one training step reports.
type StepResult struct {
	Loss float64 // mean cross-entropy over the batch, before the update
	Hits int     // images of the batch classified right, before the update
}

// Pass is one forward and backward pass copied out to host float64 slices,
// for comparing devices and implementations.
type Pass struct {
	Loss     float64
	LogProbs []float64 // rows×10
	Grads    [6][]float64
}

// OptimizerState is Adam's state in host memory: the update count and the
// first and second moments, one slice per parameter in Params order, each as
// long as its tensor. float64 so that any backend's moments fit: the float32
// moments of the CPU and GPU backends convert exactly in both directions, so
// a resumed run continues bit for bit, and a float64 model keeps its own.
type OptimizerState struct {
	Step int64
	M, V [6][]float64
}

// Check reports the first way s cannot be the state of this network's
// optimiser: a negative step or a moment of the wrong length.
func (s OptimizerState) Check() error {
	if s.Step < 0 {
		return fmt.Errorf("optimizer step count %d is negative", s.Step)
	}
	for i, shape := range paramShapes() {
		n := shape.TotalSize()
		if len(s.M[i]) != n || len(s.V[i]) != n {
			return fmt.Errorf("optimizer moments of %s have %d and %d values, want %d", ParamNames()[i], len(s.M[i]), len(s.V[i]), n)
		}
	}
	return nil
}
