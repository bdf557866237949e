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

// ParamSpec is one row of the layout table: a parameter's name (also its
// graph node's and its tensor's in saved files) and shape. Weights are
// [in, out] so that a layer is x·W + b; biases are 1×out rows so that
// Gorgonia's BroadcastAdd can repeat them over the batch.
type ParamSpec struct {
	Name       string
	Rows, Cols int
}

// Size is the number of values of the parameter.
func (s ParamSpec) Size() int { return s.Rows * s.Cols }

// Layout is the table every engine, file format and optimizer lays the six
// parameters out by, in this order.
func Layout() [6]ParamSpec {
	return [6]ParamSpec{
		{"dense1.weight", Inputs, Hidden1}, {"dense1.bias", 1, Hidden1},
		{"dense2.weight", Hidden1, Hidden2}, {"dense2.bias", 1, Hidden2},
		{"dense3.weight", Hidden2, Classes}, {"dense3.bias", 1, Classes},
	}
}

// ParamNames returns the tensor names in Layout order.
func ParamNames() [6]string {
	var names [6]string
	for i, s := range Layout() {
		names[i] = s.Name
	}
	return names
}

// paramShapes are the shapes in Layout order.
func paramShapes() [6]tensor.Shape {
	var shapes [6]tensor.Shape
	for i, s := range Layout() {
		shapes[i] = tensor.Shape{s.Rows, s.Cols}
	}
	return shapes
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

// ParamCount is the number of trainable scalars (109,386 for this network).
func ParamCount() int {
	n := 0
	for _, s := range Layout() {
		n += s.Size()
	}
	return n
}

// Clone copies the parameters into new tensors of the same dtype.
func (p *Params) Clone() (*Params, error) {
	out := &Params{}
	for i, t := range p.Tensors {
		c, ok := t.Clone().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("copy %s: not a dense tensor", ParamNames()[i])
		}
		out.Tensors[i] = c
	}
	return out, nil
}

// firstNonFiniteParam returns the name, index and value of the first NaN or
// infinite parameter, or an empty name when all are finite.
func (p *Params) firstNonFiniteParam() (name string, at int, v float64) {
	for i, t := range p.Tensors {
		switch d := t.Data().(type) {
		case []float32:
			at, v = firstNonFinite(d)
		case []float64:
			at, v = firstNonFinite(d)
		}
		if at >= 0 {
			return ParamNames()[i], at, v
		}
	}
	return "", -1, 0
}

func (p *Params) finite() bool {
	name, _, _ := p.firstNonFiniteParam()
	return name == ""
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
