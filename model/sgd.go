package model

import (
	"fmt"

	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

const sgdName = "sgd"

// sgdKind is Keras's SGD with momentum (not Nesterov). Its one slot is the
// velocity, kept in the weights' precision:
//
//	v ← μ·v - lr·g
//	w ← w + v
func sgdKind() optimizerKind {
	return optimizerKind{
		slots: []string{"velocity"},
		settings: func(c OptimizerConfig) []Setting {
			return []Setting{{"lr", c.LearningRate}, {"momentum", c.Momentum}}
		},
		validate: func(c OptimizerConfig) error {
			if !(c.Momentum >= 0 && c.Momentum < 1) {
				return fmt.Errorf("momentum must be in [0, 1), got %v", c.Momentum)
			}
			return nil
		},
		checkState: func(*OptimizerState) error { return nil }, // any finite velocity can occur
		newHost: func(c OptimizerConfig, p *Params, _ *kernels.Crew) hostOptimizer {
			return &sgd{slotState: newSlotState(sgdName, 1, p), cfg: c}
		},
	}
}

// sgd updates host tensors; its slot is the velocity.
type sgd struct {
	slotState
	cfg OptimizerConfig
}

func (s *sgd) update(p *Params, grads [6]*tensor.Dense) error {
	s.step++
	for i, w := range p.Tensors {
		var ok bool
		if s.f32 != nil {
			ok = sgdOne(w, grads[i], s.f32[0][i], s.cfg)
		} else {
			ok = sgdOne(w, grads[i], s.f64[0][i], s.cfg)
		}
		if !ok {
			return fmt.Errorf("sgd: gradient of %s (%v) does not match its weights (%v)", ParamNames()[i], grads[i].Dtype(), w.Dtype())
		}
	}
	return nil
}

func sgdOne[T float32 | float64](w, g *tensor.Dense, v []T, c OptimizerConfig) bool {
	wd, gd, ok := gradientsOf[T](w, g, len(v))
	if ok {
		kernels.SGDMomentum(wd, gd, v, T(c.Momentum), T(c.LearningRate))
	}
	return ok
}
