package kernels

import "math"

// AdamConsts are the coefficients of one Adam step.
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

// adamConsts32 is AdamConsts rounded to float32, as the float32 kernels use
// them. adam_amd64.s reads the fields by offset: keep their order.
type adamConsts32 struct {
	alpha, beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps float32
}

func (k AdamConsts) float32s() adamConsts32 {
	return adamConsts32{float32(k.Alpha), float32(k.Beta1), float32(k.OneMinusBeta1),
		float32(k.Beta2), float32(k.OneMinusBeta2), float32(k.Eps)}
}

// adamMinPiece is the number of elements below which a piece is not worth
// a goroutine: dense1.weight (100,352 values) is split across cores, the
// other tensors are not.
const adamMinPiece = 1 << 14

// Adam applies one step of Keras's Adam ("ε-hat" form) to w from its
// gradient g, with the moments m and v in w's precision, as Keras keeps
// them:
//
//	m ← β1·m + (1-β1)·g
//	v ← β2·v + (1-β2)·g²
//	w ← w - α·m/(sqrt(v)+ε)
//
// All four slices must have the same length. Large tensors are shared with
// crew's helpers (crew may be nil); each element depends only on its own
// values, so the split changes no result.
func Adam[T float32 | float64](crew *Crew, w, g, m, v []T, k AdamConsts) {
	crew.split(len(w), 8, adamMinPiece, func(lo, hi int) {
		adamPiece(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], k)
	})
}

func adamPiece[T float32 | float64](w, g, m, v []T, k AdamConsts) {
	done := 0
	if wf, ok := any(w).([]float32); ok && hasAVX() {
		gf, mf, vf := any(g).([]float32), any(m).([]float32), any(v).([]float32)
		k32 := k.float32s()
		if hasAVX512() {
			done = len(w) &^ 15
			adamF32AVX512(wf[:done], gf[:done], mf[:done], vf[:done], &k32)
		}
		if end := len(w) &^ 7; end > done {
			adamF32AVX(wf[done:end], gf[done:end], mf[done:end], vf[done:end], &k32)
			done = end
		}
	}
	AdamScalar(w[done:], g[done:], m[done:], v[done:], k)
}

// AdamScalar is the plain loop the vector kernel must match bit for bit:
// every operation in T's precision, the square root correctly rounded. In
// float32 it flushes subnormal inputs and results to zero, as the kernel
// does (see adam_amd64.s). Each product is converted explicitly, which
// rounds it and so stops the compiler fusing it with the following add
// (it would, for GOAMD64=v3): the kernel never fuses.
func AdamScalar[T float32 | float64](w, g, m, v []T, k AdamConsts) {
	switch w := any(w).(type) {
	case []float32:
		adamScalar32(w, any(g).([]float32), any(m).([]float32), any(v).([]float32), k.float32s())
	case []float64:
		adamScalar64(w, any(g).([]float64), any(m).([]float64), any(v).([]float64), k)
	}
}

func adamScalar32(w, g, m, v []float32, k adamConsts32) {
	for j := range w {
		gj := ftz(g[j])
		m[j] = ftz(ftz(float32(k.beta1*ftz(m[j]))) + ftz(float32(k.oneMinusBeta1*gj)))
		v[j] = ftz(ftz(float32(k.beta2*ftz(v[j]))) + ftz(float32(ftz(float32(k.oneMinusBeta2*gj))*gj)))
		den := ftz(float32(math.Sqrt(float64(v[j]))) + k.eps)
		w[j] = ftz(ftz(w[j]) - ftz(float32(ftz(float32(k.alpha*m[j]))/den)))
	}
}

func adamScalar64(w, g, m, v []float64, k AdamConsts) {
	for j := range w {
		gj := g[j]
		m[j] = float64(k.Beta1*m[j]) + float64(k.OneMinusBeta1*gj)
		v[j] = float64(k.Beta2*v[j]) + float64(float64(k.OneMinusBeta2*gj)*gj)
		w[j] -= float64(k.Alpha*m[j]) / (math.Sqrt(v[j]) + k.Eps)
	}
}

// ftz is x, or a zero of x's sign where x is subnormal.
func ftz(x float32) float32 {
	b := math.Float32bits(x)
	if b&0x7f800000 == 0 {
		return math.Float32frombits(b & 0x80000000)
	}
	return x
}
