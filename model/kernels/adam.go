package kernels

import "math"

// AdamConsts are the coefficients of one Adam step. adam_amd64.s reads the
// fields by offset: keep their order.
type AdamConsts struct {
	Alpha         float64 // lr·sqrt(1-β2^t)/(1-β1^t), the bias-corrected rate
	Beta1         float64
	OneMinusBeta1 float64
	Beta2         float64
	OneMinusBeta2 float64
	Eps           float64
}

// NewAdamConsts fills in the derived coefficients.
func NewAdamConsts(alpha, beta1, beta2, eps float64) AdamConsts {
	return AdamConsts{
		Alpha: alpha, Beta1: beta1, OneMinusBeta1: 1 - beta1,
		Beta2: beta2, OneMinusBeta2: 1 - beta2, Eps: eps,
	}
}

// adamMinPiece is the number of elements below which a piece is not worth
// a goroutine: dense1.weight (100,352 values) is split across cores, the
// other tensors are not.
const adamMinPiece = 1 << 14

// Adam applies one step of Keras's Adam ("ε-hat" form) to w from its
// gradient g, with the moments m and v kept in float64 whatever w's type:
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	w ← w - α·m/(sqrt(v)+ε)
//
// All four slices must have the same length. Each element depends only on
// its own values, so the split across cores changes no result.
func Adam[T float32 | float64](w, g []T, m, v []float64, k AdamConsts) {
	split(len(w), 4, adamMinPiece, func(lo, hi int) {
		adamPiece(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], &k)
	})
}

func adamPiece[T float32 | float64](w, g []T, m, v []float64, k *AdamConsts) {
	done := 0
	if wf, ok := any(w).([]float32); ok && hasAVX() {
		done = len(w) &^ 3
		adamF32AVX(wf[:done], any(g).([]float32)[:done], m[:done], v[:done], k)
	}
	AdamScalar(w[done:], g[done:], m[done:], v[done:], *k)
}

// AdamScalar is the plain loop the vector kernel must match bit for bit.
func AdamScalar[T float32 | float64](w, g []T, m, v []float64, k AdamConsts) {
	for j := range w {
		gj := float64(g[j])
		m[j] = k.Beta1*m[j] + k.OneMinusBeta1*gj
		v[j] = k.Beta2*v[j] + k.OneMinusBeta2*gj*gj
		w[j] -= T(k.Alpha * m[j] / (math.Sqrt(v[j]) + k.Eps))
	}
}
