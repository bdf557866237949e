// Package model holds the MNIST network, the training loop, evaluation and
// the file formats. The arithmetic runs in an Engine: this package's
// Gorgonia graph (NewGraphEngine) or one that package gpu builds; everything
// around it is here and the same for every engine.
package model

import (
	"fmt"

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
	Epochs    int
	BatchSize int
	Optimizer OptimizerConfig
	Seed      uint64
	// Dtype is tensor.Float32 for training; tests use tensor.Float64 to check
	// gradients against finite differences.
	Dtype tensor.Dtype
}

// DefaultMomentum is the momentum of -optimizer sgd, as in the Keras
// examples that use SGD.
const DefaultMomentum = 0.9

// DefaultConfig is the spec: Adam(lr 0.001, β1 0.9, β2 0.999, ε 1e-7), five
// epochs of batch 32, float32. Momentum is set too, for -optimizer sgd.
func DefaultConfig() Config {
	return Config{
		Epochs:    5,
		BatchSize: 32,
		Optimizer: OptimizerConfig{
			Name:         adamName,
			LearningRate: 0.001,
			Beta1:        0.9,
			Beta2:        0.999,
			Epsilon:      1e-7,
			Momentum:     DefaultMomentum,
		},
		Seed:  1,
		Dtype: tensor.Float32,
	}
}

// Validate reports the first hyperparameter that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("epochs must be >= 0, got %d", c.Epochs)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size must be >= 1, got %d", c.BatchSize)
	case c.Dtype != tensor.Float32 && c.Dtype != tensor.Float64:
		return fmt.Errorf("dtype must be float32 or float64, got %v", c.Dtype)
	}
	return c.Optimizer.Validate()
}
