package model

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// adam is Keras's Adam, written out because Gorgonia's solver differs from it
// in two ways that matter here: it places ε after bias correction (Keras uses
// the "ε-hat" form below) and it clones every tensor on every step. Its state
// is plain slices, one per parameter, so it is easy to inspect and to save.
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	α ← lr·sqrt(1-β2^t)/(1-β1^t)
//	w ← w - α·m/(sqrt(v)+ε)
type adam struct {
	lr, beta1, beta2, eps float64
	step                  int64
	m, v                  [6][]float64
}

func newAdam(c Config, p *Params) *adam {
	a := &adam{lr: c.LearningRate, beta1: c.Beta1, beta2: c.Beta2, eps: c.Epsilon}
	for i, t := range p.Tensors {
		n := t.Shape().TotalSize()
		a.m[i] = make([]float64, n)
		a.v[i] = make([]float64, n)
	}
	return a
}

// update applies one step to every parameter from its gradient tensor.
func (a *adam) update(p *Params, grads [6]*tensor.Dense) error {
	a.step++
	t := float64(a.step)
	alpha := a.lr * math.Sqrt(1-math.Pow(a.beta2, t)) / (1 - math.Pow(a.beta1, t))
	k := kernels.NewAdamConsts(alpha, a.beta1, a.beta2, a.eps)
	for i, w := range p.Tensors {
		switch wd := w.Data().(type) {
		case []float32:
			gd, ok := grads[i].Data().([]float32)
			if !ok || len(gd) != len(wd) {
				return fmt.Errorf("adam: gradient of %s does not match its weights", ParamNames()[i])
			}
			kernels.Adam(wd, gd, a.m[i], a.v[i], k)
		case []float64:
			gd, ok := grads[i].Data().([]float64)
			if !ok || len(gd) != len(wd) {
				return fmt.Errorf("adam: gradient of %s does not match its weights", ParamNames()[i])
			}
			kernels.Adam(wd, gd, a.m[i], a.v[i], k)
		default:
			return fmt.Errorf("adam: unsupported dtype %v", w.Dtype())
		}
	}
	return nil
}
