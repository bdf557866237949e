// Package model holds the MNIST network as a Gorgonia graph, the training
// loop and the evaluation. It does not know which device runs the graph: the
// caller passes the tape-machine options it got from package gpu.
package model

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// Layer sizes of the Keras original: Flatten(784) → Dense(128, ReLU) →
// Dense(64, ReLU) → Dense(10, softmax).
const (
	Inputs  = 784
	Hidden1 = 128
	Hidden2 = 64
	Classes = 10
)

// Architecture describes the network in one line, for logs and metadata.
const Architecture = "Flatten(784) -> Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax)"

// Config holds the hyperparameters. The zero value is not useful; start from
// DefaultConfig, which matches Keras's defaults for the spec program.
type Config struct {
	Epochs       int
	BatchSize    int
	LearningRate float64
	Beta1        float64
	Beta2        float64
	Epsilon      float64
	Seed         uint64
	// Dtype is tensor.Float32 for training; tests use tensor.Float64 to check
	// gradients against finite differences.
	Dtype tensor.Dtype
}

// DefaultConfig is the spec: Adam(lr 0.001, β1 0.9, β2 0.999, ε 1e-7), five
// epochs of batch 32, float32.
func DefaultConfig() Config {
	return Config{
		Epochs:       5,
		BatchSize:    32,
		LearningRate: 0.001,
		Beta1:        0.9,
		Beta2:        0.999,
		Epsilon:      1e-7,
		Seed:         1,
		Dtype:        tensor.Float32,
	}
}

// Validate reports the first hyperparameter that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("epochs must be >= 0, got %d", c.Epochs)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size must be >= 1, got %d", c.BatchSize)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("learning rate must be a positive number, got %v", c.LearningRate)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("beta1 must be in [0, 1), got %v", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("beta2 must be in [0, 1), got %v", c.Beta2)
	case !(c.Epsilon > 0):
		return fmt.Errorf("epsilon must be > 0, got %v", c.Epsilon)
	case c.Dtype != tensor.Float32 && c.Dtype != tensor.Float64:
		return fmt.Errorf("dtype must be float32 or float64, got %v", c.Dtype)
	}
	return nil
}
