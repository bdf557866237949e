package model

import (
	"fmt"

	"mnist/data"
)

// Engine runs the network on one device. It does the arithmetic and nothing
// else: the training loop (Trainer), evaluation and prediction batching
// (Evaluate, Predict), scoring, divergence checks and checkpoint assembly
// live in this package and are the same whichever engine runs underneath.
//
// An engine holds the parameters, its optimizer's state and the data sets it
// has been handed with Load; the verbs name a loaded set by its DataID and
// work on batches of image numbers of that set, at most the configured batch
// size at a time. Engines on a device upload a set once, in Load; the engine
// never guesses which set it was given.
//
// The CPU's engine is the Gorgonia graph (NewGraphEngine); package gpu
// supplies the CUDA ones. An engine is used by one goroutine at a time.
type Engine interface {
	// Load hands the engine a data set, replacing the set it held under id.
	Load(id DataID, set *data.Set) error
	// Forward writes the log-probabilities of images idx of set id to
	// logProbs: row r, Classes values, for image idx[r].
	Forward(id DataID, idx []int, logProbs []float64) error
	// Step trains on images idx of the TrainSet: forward, backward and one
	// optimizer update. It reports the batch's loss and hits from before
	// the update.
	Step(idx []int) (StepResult, error)
	// Finite reports whether every parameter is a finite number. Engines
	// answer on the device; nothing is copied to the host for it.
	Finite() (bool, error)
	// State copies the parameters and the optimizer's state to the host.
	State() (State, error)
	// SetState replaces the parameters and, unless s.Optimizer is nil, the
	// optimizer's state; a nil Optimizer starts the optimizer afresh (zero
	// moments, step 0), as after -load. On an error nothing has changed.
	SetState(s State) error
	// Close releases the engine's memory and machines.
	Close() error
}

// DataID names a data set an engine holds.
type DataID int

// The data sets a run hands its engine.
const (
	TrainSet DataID = iota // the images Step trains on
	TestSet                // the images Evaluate scores
	Images                 // images to classify (Predict)
	numDataIDs
)

func (id DataID) String() string {
	switch id {
	case TrainSet:
		return "training set"
	case TestSet:
		return "test set"
	case Images:
		return "images"
	}
	return "unknown data set"
}

// StepResult is what one training step reports.
type StepResult struct {
	Loss float64 // mean cross-entropy over the batch, before the update
	Hits int     // images of the batch classified right, before the update
}

// State is an engine's trainable state in host memory.
type State struct {
	Params    *Params
	Optimizer *OptimizerState // nil: a fresh optimizer
}

// CheckSet reports why set cannot be handed to an engine: it is empty, its
// pixels and labels disagree in number, or a label is not a digit.
func CheckSet(set *data.Set) error {
	n := set.Len()
	if n == 0 {
		return fmt.Errorf("the set is empty")
	}
	if len(set.Images) != n*data.ImageSize {
		return fmt.Errorf("a set of %d labels has %d pixels, want %d", n, len(set.Images), n*data.ImageSize)
	}
	for i, l := range set.Labels {
		if l >= data.NumClasses {
			return fmt.Errorf("label %d of image %d is not a digit 0-9", l, i)
		}
	}
	return nil
}

// CheckBatch reports why idx cannot be a batch of at most batch images of a
// set of n: it is empty, too long, or names an image the set lacks.
func CheckBatch(idx []int, batch, n int) error {
	if len(idx) == 0 {
		return fmt.Errorf("empty batch")
	}
	if len(idx) > batch {
		return fmt.Errorf("batch of %d images is larger than the batch size %d", len(idx), batch)
	}
	for _, i := range idx {
		if i < 0 || i >= n {
			return fmt.Errorf("image index %d out of range for a set of %d images", i, n)
		}
	}
	return nil
}
