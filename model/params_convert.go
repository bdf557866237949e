package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

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

// checkShapes reports the first tensor of p whose shape differs from want's.
func checkShapes(p, want *Params) error {
	if p == nil {
		return fmt.Errorf("no parameters")
	}
	for i, t := range p.Tensors {
		if t == nil {
			return fmt.Errorf("%s is missing", ParamNames()[i])
		}
		if !t.Shape().Eq(want.Tensors[i].Shape()) {
			return fmt.Errorf("%s has shape %v, want %v", ParamNames()[i], t.Shape(), want.Tensors[i].Shape())
		}
	}
	return nil
}
