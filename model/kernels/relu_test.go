package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// reluValues are random values with the special ones mixed in: ±0, ±Inf,
// NaN (quiet, negative too), subnormals of both signs.
func reluValues(r *rand.Rand, n int) []float32 {
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), -float32(math.NaN()), 1e-42, -1e-42, math.MaxFloat32, -math.MaxFloat32}
	v := make([]float32, n)
	for i := range v {
		if r.IntN(4) == 0 {
			v[i] = specials[r.IntN(len(specials))]
		} else {
			v[i] = float32(r.NormFloat64())
		}
	}
	return v
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestBiasReLUMatchesLoop checks BiasReLU (the vector kernel for whole
// eights, the loop for the rest) against the plain loop, bit for bit, over
// widths that end mid-vector.
func TestBiasReLUMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, cols := range []int{1, 7, 8, 10, 17, 64, 128} {
		for _, relu := range []bool{false, true} {
			rows := 5
			h, b := reluValues(r, rows*cols), reluValues(r, cols)
			want := append([]float32(nil), h...)
			for i := range want {
				v := want[i] + b[i%cols]
				if relu && !(v >= 0) {
					v *= 0
				}
				want[i] = v
			}
			BiasReLU(h, b, relu)
			if i := sameBits(h, want); i >= 0 {
				t.Fatalf("cols=%d relu=%v: h[%d] = %v (%#x), want %v (%#x)", cols, relu, i, h[i], math.Float32bits(h[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
}

// TestReLUGradMatchesLoop checks ReLUGrad against its definition, bit for
// bit: dy where y's bits are 0 to 0x7f800000, 0·dy elsewhere.
func TestReLUGradMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{0, 1, 7, 8, 9, 64, 130} {
		y, dy := reluValues(r, n), reluValues(r, n)
		want := make([]float32, n)
		for i := range want {
			if bits := math.Float32bits(y[i]); bits <= 0x7f800000 {
				want[i] = dy[i]
			} else {
				want[i] = 0 * dy[i]
			}
		}
		dz := make([]float32, n)
		ReLUGrad(dz, y, dy)
		if i := sameBits(dz, want); i >= 0 {
			t.Fatalf("n=%d: dz[%d] = %v, want %v (y %v, dy %v)", n, i, dz[i], want[i], y[i], dy[i])
		}
	}
}
