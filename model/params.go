package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// Params are the six trainable tensors, weights stored [in, out] so that a
// layer is x·W + b. They live outside any graph so that the training graph,
// the evaluation graph and the optimiser all see the same memory.
type Params struct {
	Tensors [6]*tensor.Dense
}

// ParamNames returns the tensor names in Params order. They are also the
// names of the graph nodes and, later, of the tensors in saved files.
func ParamNames() [6]string {
	return [6]string{
		"dense1.weight", "dense1.bias",
		"dense2.weight", "dense2.bias",
		"dense3.weight", "dense3.bias",
	}
}

// paramShapes are the shapes in Params order. Biases are 1×n rows so that
// Gorgonia's BroadcastAdd can repeat them over the batch.
func paramShapes() [6]tensor.Shape {
	return [6]tensor.Shape{
		{Inputs, Hidden1}, {1, Hidden1},
		{Hidden1, Hidden2}, {1, Hidden2},
		{Hidden2, Classes}, {1, Classes},
	}
}

// NewParams draws glorot-uniform weights, U(-l, l) with
// l = sqrt(6/(fan_in+fan_out)), and zero biases: Keras's defaults. The draw
// depends only on seed, so two runs with the same seed start identically.
func NewParams(dt tensor.Dtype, seed uint64) (*Params, error) {
	// A stream of its own, so that changing how batches are shuffled never
	// changes the initial weights.
	rng := rand.New(rand.NewPCG(seed, 0x676c6f726f74)) // "glorot"
	p := &Params{}
	for i, shape := range paramShapes() {
		t, err := newZeroTensor(dt, shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ParamNames()[i], err)
		}
		if i%2 == 0 { // weights; biases stay zero
			limit := math.Sqrt(6 / float64(shape[0]+shape[1]))
			fillUniform(t, rng, limit)
		}
		p.Tensors[i] = t
	}
	return p, nil
}

func newZeroTensor(dt tensor.Dtype, shape tensor.Shape) (*tensor.Dense, error) {
	n := shape.TotalSize()
	switch dt {
	case tensor.Float32:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n))), nil
	case tensor.Float64:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float64, n))), nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", dt)
}

func fillUniform(t *tensor.Dense, rng *rand.Rand, limit float64) {
	switch data := t.Data().(type) {
	case []float32:
		for i := range data {
			data[i] = float32((rng.Float64()*2 - 1) * limit)
		}
	case []float64:
		for i := range data {
			data[i] = (rng.Float64()*2 - 1) * limit
		}
	}
}

// Count is the number of trainable scalars (109,386 for this network).
func (p *Params) Count() int {
	n := 0
	for _, t := range p.Tensors {
		n += t.Shape().TotalSize()
	}
	return n
}
