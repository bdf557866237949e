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
// The moments are kept in the weights' precision, as Keras keeps them: a
// float32 model has float32 moments, which halves the memory Adam streams
// through every step and lets the kernel work on eight values at a time.
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	α ← lr·sqrt(1-β2^t)/(1-β1^t)
//	w ← w - α·m/(sqrt(v)+ε)
type adam struct {
	lr, beta1, beta2, eps float64
	step                  int64
	crew                  *kernels.Crew // shares the large tensors' updates
	// Exactly one is set, by the weights' dtype.
	f32 *moments[float32]
	f64 *moments[float64]
}

// moments are Adam's first and second moments of every parameter.
type moments[T float32 | float64] struct {
	m, v [6][]T
}

func newMoments[T float32 | float64](p *Params) *moments[T] {
	mo := &moments[T]{}
	for i, t := range p.Tensors {
		n := t.Shape().TotalSize()
		mo.m[i] = make([]T, n)
		mo.v[i] = make([]T, n)
	}
	return mo
}

func newAdam(c Config, p *Params, crew *kernels.Crew) *adam {
	a := &adam{lr: c.LearningRate, beta1: c.Beta1, beta2: c.Beta2, eps: c.Epsilon, crew: crew}
	if p.Tensors[0].Dtype() == tensor.Float64 {
		a.f64 = newMoments[float64](p)
	} else {
		a.f32 = newMoments[float32](p)
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
		var ok bool
		if a.f32 != nil {
			ok = updateOne(a.crew, w, grads[i], a.f32.m[i], a.f32.v[i], k)
		} else {
			ok = updateOne(a.crew, w, grads[i], a.f64.m[i], a.f64.v[i], k)
		}
		if !ok {
			return fmt.Errorf("adam: gradient of %s (%v) does not match its weights (%v)", ParamNames()[i], grads[i].Dtype(), w.Dtype())
		}
	}
	return nil
}

// updateOne steps one parameter; it reports false when the weights, the
// gradient and the moments are not all of type T and the same length.
func updateOne[T float32 | float64](crew *kernels.Crew, w, g *tensor.Dense, m, v []T, k kernels.AdamConsts) bool {
	wd, ok1 := w.Data().([]T)
	gd, ok2 := g.Data().([]T)
	if !ok1 || !ok2 || len(wd) != len(gd) || len(wd) != len(m) {
		return false
	}
	kernels.Adam(crew, wd, gd, m, v, k)
	return true
}

// state copies the moments out as float64, the checkpoint's format.
func (a *adam) state() OptimizerState {
	s := OptimizerState{Step: a.step}
	for i := range s.M {
		if a.f32 != nil {
			s.M[i], s.V[i] = widen(a.f32.m[i]), widen(a.f32.v[i])
		} else {
			s.M[i], s.V[i] = widen(a.f64.m[i]), widen(a.f64.v[i])
		}
	}
	return s
}

// setState copies s in; s must have passed Check. Moments saved from a
// float32 model come back exactly.
func (a *adam) setState(s OptimizerState) {
	a.step = s.Step
	for i := range s.M {
		if a.f32 != nil {
			narrow(a.f32.m[i], s.M[i])
			narrow(a.f32.v[i], s.V[i])
		} else {
			narrow(a.f64.m[i], s.M[i])
			narrow(a.f64.v[i], s.V[i])
		}
	}
}

func widen[T float32 | float64](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func narrow[T float32 | float64](dst []T, src []float64) {
	for i, v := range src {
		dst[i] = T(v)
	}
}
