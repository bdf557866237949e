package model

import (
	"fmt"
	"math"
	"sync"

	"gorgonia.org/tensor"
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
	for i, w := range p.Tensors {
		switch wd := w.Data().(type) {
		case []float32:
			gd, ok := grads[i].Data().([]float32)
			if !ok || len(gd) != len(wd) {
				return fmt.Errorf("adam: gradient of %s does not match its weights", ParamNames()[i])
			}
			adamSplit(wd, gd, a.m[i], a.v[i], alpha, a.beta1, a.beta2, a.eps)
		case []float64:
			gd, ok := grads[i].Data().([]float64)
			if !ok || len(gd) != len(wd) {
				return fmt.Errorf("adam: gradient of %s does not match its weights", ParamNames()[i])
			}
			adamSplit(wd, gd, a.m[i], a.v[i], alpha, a.beta1, a.beta2, a.eps)
		default:
			return fmt.Errorf("adam: unsupported dtype %v", w.Dtype())
		}
	}
	return nil
}

// parallelAdamMin is the tensor size from which an update runs as two
// halves side by side: dense1.weight (100,352 values) does; the others are
// too small to pay for a goroutine.
const parallelAdamMin = 1 << 14

// adamSplit runs adamStep over a large tensor in two halves at once. Each
// element depends only on its own values, so the split changes no result.
func adamSplit[T float32 | float64](w, g []T, m, v []float64, alpha, beta1, beta2, eps float64) {
	if len(w) < parallelAdamMin {
		adamStep(w, g, m, v, alpha, beta1, beta2, eps)
		return
	}
	h := len(w) / 2
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		adamStep(w[:h], g[:h], m[:h], v[:h], alpha, beta1, beta2, eps)
	}()
	adamStep(w[h:], g[h:], m[h:], v[h:], alpha, beta1, beta2, eps)
	wg.Wait()
}

// adamStep keeps the moments in float64 whatever the weights' type, so the
// float32 and float64 builds of the model follow the same trajectory up to
// the rounding of the weights themselves.
func adamStep[T float32 | float64](w, g []T, m, v []float64, alpha, beta1, beta2, eps float64) {
	for j := range w {
		gj := float64(g[j])
		m[j] = beta1*m[j] + (1-beta1)*gj
		v[j] = beta2*v[j] + (1-beta2)*gj*gj
		w[j] -= T(alpha * m[j] / (math.Sqrt(v[j]) + eps))
	}
}
