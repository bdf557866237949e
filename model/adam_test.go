package model

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// TestAdamStepMatchesKeras replays Keras's update rule by hand for a few
// steps on one scalar.
func TestAdamStepMatchesKeras(t *testing.T) {
	// Variables, not constants: Go folds constant expressions exactly, which
	// would round differently from the float64 arithmetic under test.
	var lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7
	w := []float64{0.5}
	m, v := []float64{0}, []float64{0}
	wantW, wantM, wantV := 0.5, 0.0, 0.0
	for step, g := range []float64{0.3, -0.2, 1e-3, 4} {
		tt := float64(step + 1)
		alpha := lr * math.Sqrt(1-math.Pow(b2, tt)) / (1 - math.Pow(b1, tt))
		kernels.Adam(nil, w, []float64{g}, m, v, kernels.NewAdamConsts(alpha, b1, b2, eps))
		// Conversions round each product, so no fused multiply-add.
		wantM = float64(b1*wantM) + float64((1-b1)*g)
		wantV = float64(b2*wantV) + float64(float64((1-b2)*g)*g)
		wantW -= float64(alpha*wantM) / (math.Sqrt(wantV) + eps)
		if w[0] != wantW || m[0] != wantM || v[0] != wantV {
			t.Fatalf("step %d: got w=%v m=%v v=%v, want %v %v %v", step+1, w[0], m[0], v[0], wantW, wantM, wantV)
		}
	}
}

func TestAdamFirstStepIsLearningRate(t *testing.T) {
	cfg := DefaultConfig()
	p, err := NewParams(cfg.Dtype, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), p.Tensors[0].Data().([]float32)...)
	var grads [6]*tensor.Dense
	for i, tt := range p.Tensors {
		g, _ := newZeroTensor(cfg.Dtype, tt.Shape())
		for j, d := 0, g.Data().([]float32); j < len(d); j++ {
			d[j] = float32(j%7) - 3 // mixed signs and zeros
		}
		grads[i] = g
	}
	opt, err := newHostOptimizer(cfg.Optimizer, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := opt.update(p, grads); err != nil {
		t.Fatal(err)
	}
	after := p.Tensors[0].Data().([]float32)
	for j := range after {
		g := float64(j%7) - 3
		delta := float64(after[j]) - float64(before[j])
		want := -0.001 * sign(g)
		if math.Abs(delta-want) > 2e-6 {
			t.Fatalf("weight %d with gradient %v moved %v, want about %v", j, g, delta, want)
		}
	}
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
