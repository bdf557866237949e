// Package reference is a plain-Go, float64, loop-by-loop implementation of
// the MNIST network's forward pass, loss, gradients and optimizer steps
// (Adam, SGD). It uses no Gorgonia at all, so it is an independent yardstick: the CPU graph is tested
// against it tightly, and the GPU graph is tested against it in the cuda
// build (where the CPU graph cannot run in the same binary).
package reference

import "math"

// Layer sizes, repeated here so the package depends on nothing.
const inputs, hidden1, hidden2, classes = 784, 128, 64, 10

func layerSizes() [4]int { return [4]int{inputs, hidden1, hidden2, classes} }

// Params are the six tensors in model.Params order, weights [in, out]
// row-major, biases of length out.
type Params [6][]float64

// Zero returns Params of the right sizes filled with zeros.
func Zero() Params {
	var p Params
	for l := 0; l < 3; l++ {
		p[2*l] = make([]float64, layerSizes()[l]*layerSizes()[l+1])
		p[2*l+1] = make([]float64, layerSizes()[l+1])
	}
	return p
}

// Clone returns a deep copy.
func (p Params) Clone() Params {
	var c Params
	for i := range p {
		c[i] = append([]float64(nil), p[i]...)
	}
	return c
}

// Pass is the result of one forward and backward pass.
type Pass struct {
	Loss     float64   // mean cross-entropy over the rows
	LogProbs []float64 // rows×10
	Grads    Params
}

// ForwardBackward runs x (rows×784, already scaled) with integer labels.
func ForwardBackward(p Params, x []float64, labels []int) Pass {
	rows := len(labels)
	// Forward: keep every layer's output for the backward pass.
	acts := [4][]float64{x}
	for l := 0; l < 3; l++ {
		in, out := layerSizes()[l], layerSizes()[l+1]
		w, b := p[2*l], p[2*l+1]
		a := make([]float64, rows*out)
		for r := 0; r < rows; r++ {
			for j := 0; j < out; j++ {
				s := b[j]
				for k := 0; k < in; k++ {
					s += acts[l][r*in+k] * w[k*out+j]
				}
				if l < 2 && s < 0 {
					s = 0
				}
				a[r*out+j] = s
			}
		}
		acts[l+1] = a
	}
	logits := acts[3]
	pass := Pass{LogProbs: make([]float64, rows*10), Grads: Zero()}
	delta := make([]float64, rows*10) // dLoss/dlogits
	for r := 0; r < rows; r++ {
		row := logits[r*10 : (r+1)*10]
		mx := row[0]
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		for c, v := range row {
			lp := v - lse
			pass.LogProbs[r*10+c] = lp
			d := math.Exp(lp)
			if c == labels[r] {
				d--
				pass.Loss -= lp
			}
			delta[r*10+c] = d / float64(rows)
		}
	}
	pass.Loss /= float64(rows)

	// Backward.
	for l := 2; l >= 0; l-- {
		in, out := layerSizes()[l], layerSizes()[l+1]
		gw, gb, w := pass.Grads[2*l], pass.Grads[2*l+1], p[2*l]
		prev := make([]float64, rows*in)
		for r := 0; r < rows; r++ {
			for j := 0; j < out; j++ {
				d := delta[r*out+j]
				gb[j] += d
				for k := 0; k < in; k++ {
					gw[k*out+j] += acts[l][r*in+k] * d
					prev[r*in+k] += w[k*out+j] * d
				}
			}
		}
		if l > 0 { // through the ReLU of the layer below
			for i, a := range acts[l] {
				if a <= 0 {
					prev[i] = 0
				}
			}
		}
		delta = prev
	}
	return pass
}

// Adam is Keras's Adam state.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	Step                  int
	M, V                  Params
}

// NewAdam starts Adam with zero moments.
func NewAdam(lr, beta1, beta2, eps float64) *Adam {
	return &Adam{LR: lr, Beta1: beta1, Beta2: beta2, Eps: eps, M: Zero(), V: Zero()}
}

// Update applies one step of Keras's rule to p in place.
func (a *Adam) Update(p, grads Params) {
	a.Step++
	t := float64(a.Step)
	alpha := a.LR * math.Sqrt(1-math.Pow(a.Beta2, t)) / (1 - math.Pow(a.Beta1, t))
	for i := range p {
		for j, g := range grads[i] {
			a.M[i][j] = a.Beta1*a.M[i][j] + (1-a.Beta1)*g
			a.V[i][j] = a.Beta2*a.V[i][j] + (1-a.Beta2)*g*g
			p[i][j] -= alpha * a.M[i][j] / (math.Sqrt(a.V[i][j]) + a.Eps)
		}
	}
}

// SGD is Keras's SGD with momentum (not Nesterov).
type SGD struct {
	LR, Momentum float64
	Velocity     Params
}

// NewSGD starts SGD with zero velocity.
func NewSGD(lr, momentum float64) *SGD {
	return &SGD{LR: lr, Momentum: momentum, Velocity: Zero()}
}

// Update applies one step to p in place: v ← μ·v - lr·g, w ← w + v.
func (s *SGD) Update(p, grads Params) {
	for i := range p {
		for j, g := range grads[i] {
			s.Velocity[i][j] = s.Momentum*s.Velocity[i][j] - s.LR*g
			p[i][j] += s.Velocity[i][j]
		}
	}
}
