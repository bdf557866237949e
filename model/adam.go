package model

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// adamName is the spec's optimizer.
const adamName = "adam"

// adamKind is Keras's Adam, written out because Gorgonia's solver differs
// from it in two ways that matter here: it places ε after bias correction
// (Keras uses the "ε-hat" form below) and it clones every tensor on every
// step. The moments are kept in the weights' precision, as Keras keeps them:
// a float32 model has float32 moments, which halves the memory Adam streams
// through every step and lets the kernel work on eight values at a time.
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	α ← lr·sqrt(1-β2^t)/(1-β1^t)
//	w ← w - α·m/(sqrt(v)+ε)
func adamKind() optimizerKind {
	return optimizerKind{
		slots: []string{"m", "v"},
		settings: func(c OptimizerConfig) []Setting {
			return []Setting{{"lr", c.LearningRate}, {"beta1", c.Beta1}, {"beta2", c.Beta2}, {"epsilon", c.Epsilon}}
		},
		validate: func(c OptimizerConfig) error {
			switch {
			case !(c.Beta1 >= 0 && c.Beta1 < 1):
				return fmt.Errorf("beta1 must be in [0, 1), got %v", c.Beta1)
			case !(c.Beta2 >= 0 && c.Beta2 < 1):
				return fmt.Errorf("beta2 must be in [0, 1), got %v", c.Beta2)
			case !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 0):
				return fmt.Errorf("epsilon must be a positive number, got %v", c.Epsilon)
			}
			return nil
		},
		checkState: func(s *OptimizerState) error {
			for p, v := range s.Slots[1] {
				for i, x := range v {
					if x < 0 {
						return fmt.Errorf("%s[%d] is %v: a second moment is never negative", s.TensorName("v", p), i, x)
					}
				}
			}
			return nil
		},
		newHost: func(c OptimizerConfig, p *Params, crew *kernels.Crew) hostOptimizer {
			return &adam{slotState: newSlotState(adamName, 2, p), cfg: c, crew: crew}
		},
	}
}

// adam updates host tensors; its slots are m and v.
type adam struct {
	slotState
	cfg  OptimizerConfig
	crew *kernels.Crew // shares the large tensors' updates
}

// AdamRate is the bias-corrected step size α of update t (1-based), in
// float64 whatever the weights' dtype: every engine computes it this way.
func AdamRate(c OptimizerConfig, t int64) float64 {
	n := float64(t)
	return c.LearningRate * math.Sqrt(1-math.Pow(c.Beta2, n)) / (1 - math.Pow(c.Beta1, n))
}

func (a *adam) update(p *Params, grads [6]*tensor.Dense) error {
	a.step++
	k := kernels.NewAdamConsts(AdamRate(a.cfg, a.step), a.cfg.Beta1, a.cfg.Beta2, a.cfg.Epsilon)
	for i, w := range p.Tensors {
		var ok bool
		if a.f32 != nil {
			ok = adamOne(a.crew, w, grads[i], a.f32[0][i], a.f32[1][i], k)
		} else {
			ok = adamOne(a.crew, w, grads[i], a.f64[0][i], a.f64[1][i], k)
		}
		if !ok {
			return fmt.Errorf("adam: gradient of %s (%v) does not match its weights (%v)", ParamNames()[i], grads[i].Dtype(), w.Dtype())
		}
	}
	return nil
}

func adamOne[T float32 | float64](crew *kernels.Crew, w, g *tensor.Dense, m, v []T, k kernels.AdamConsts) bool {
	wd, gd, ok := gradientsOf[T](w, g, len(m))
	if ok {
		kernels.Adam(crew, wd, gd, m, v, k)
	}
	return ok
}
