package model

import "mnist/data"

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
