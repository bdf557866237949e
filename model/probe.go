package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
)

// Pass is one forward and backward pass copied out to host float64 slices,
// for comparing devices and implementations.
type Pass struct {
	Loss     float64
	LogProbs []float64 // rows×10
	Grads    [6][]float64
}

// Probe runs forward and backward on the images at idx without updating
// anything.
func (t *Trainer) Probe(set *data.Set, idx []int) (Pass, error) {
	gr := t.graph
	if err := loadBatch(gr, set, idx); err != nil {
		return Pass{}, err
	}
	if err := gr.run(); err != nil {
		return Pass{}, fmt.Errorf("run graph: %w", err)
	}
	var p Pass
	var err error
	if p.Loss, err = scalar(gr.loss.Value()); err != nil {
		return Pass{}, fmt.Errorf("read loss: %w", err)
	}
	lp := toFloat64(gr.logProbs.Value())
	p.LogProbs = lp[:len(idx)*Classes]
	for i, gn := range gr.grads {
		p.Grads[i] = toFloat64(gn.Value())
	}
	return p, nil
}

// Step runs one training step (forward, backward, Adam) on the images at idx
// and returns the batch's mean loss.
func (t *Trainer) Step(set *data.Set, idx []int) (float64, error) {
	loss, _, err := t.step(set, idx)
	return loss, err
}

// Float64s copies the parameters out as float64 slices, in ParamNames order.
func (p *Params) Float64s() [6][]float64 {
	var out [6][]float64
	for i, t := range p.Tensors {
		out[i] = toFloat64(t)
	}
	return out
}

// SetFloat64s overwrites the parameters, converting to their dtype.
func (p *Params) SetFloat64s(v [6][]float64) error {
	for i, t := range p.Tensors {
		if len(v[i]) != t.Shape().TotalSize() {
			return fmt.Errorf("%s: got %d values, want %d", ParamNames()[i], len(v[i]), t.Shape().TotalSize())
		}
		switch d := t.Data().(type) {
		case []float32:
			for j, x := range v[i] {
				d[j] = float32(x)
			}
		case []float64:
			copy(d, v[i])
		}
	}
	return nil
}

func toFloat64(v G.Value) []float64 {
	switch d := v.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	}
	return nil
}

// Program is Gorgonia's listing of the compiled training program: every
// instruction with the registers it reads and writes. In the cuda build the
// registers say which device holds each value, and memcpy instructions are
// the device↔host copies.
func (t *Trainer) Program() (string, error) {
	prog, _, err := G.Compile(t.graph.g)
	if err != nil {
		return "", fmt.Errorf("compile training graph: %w", err)
	}
	return prog.String(), nil
}

// Dtype reports the element type the trainer computes in.
func (t *Trainer) Dtype() tensor.Dtype { return t.cfg.Dtype }
