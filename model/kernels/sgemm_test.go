package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// sparseMatrix fills rows×cols (with leading dimension ld) with values of
// mixed sign and magnitude, a fraction zero of them exactly 0, as MNIST's
// images and ReLU activations are.
func sparseMatrix(r *rand.Rand, rows, cols, ld int, zero float64) []float32 {
	out := make([]float32, max(0, (rows-1)*ld+cols))
	for i := range rows {
		for j := range cols {
			if r.Float64() >= zero {
				out[i*ld+j] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(5)-2)))
			}
		}
	}
	return out
}

// TestSgemmMatchesGonumBitForBit is the contract that lets the trainer use
// these kernels without changing a single result: for every shape the
// network uses, and for awkward ones, C is identical to gonum's, bit for bit.
func TestSgemmMatchesGonumBitForBit(t *testing.T) {
	cases := []struct {
		tA            blas.Transpose
		m, n, k       int
		alpha, beta   float32
		zero          float64 // fraction of A that is 0
		padA, padB, p int     // extra leading-dimension padding for A, B, C
	}{
		{blas.NoTrans, 32, 128, 784, 1, 0, 0.8, 0, 0, 0},    // dense1 forward
		{blas.Trans, 784, 128, 32, 1, 0, 0.8, 0, 0, 0},      // dense1 weight gradient
		{blas.NoTrans, 32, 64, 128, 1, 0, 0.5, 0, 0, 0},     // dense2 forward
		{blas.Trans, 128, 64, 32, 1, 0, 0.5, 0, 0, 0},       // dense2 weight gradient
		{blas.NoTrans, 32, 10, 64, 1, 0, 0.5, 0, 0, 0},      // dense3 forward
		{blas.Trans, 64, 10, 32, 1, 0, 0, 0, 0, 0},          // dense3 weight gradient
		{blas.NoTrans, 10000, 128, 784, 1, 0, 0.8, 0, 0, 0}, // evaluation batch
		{blas.NoTrans, 7, 13, 29, 0.5, 0.3, 0.3, 3, 2, 5},
		{blas.Trans, 33, 37, 41, -2, 1, 0.1, 1, 4, 3},
		{blas.NoTrans, 64, 9, 300, 1, 2, 0, 0, 0, 1},
		{blas.Trans, 300, 31, 64, 0, 0.5, 0, 0, 0, 0},
		{blas.NoTrans, 1, 1, 1, 1, 0, 0, 0, 0, 0},
		{blas.NoTrans, 5, 3, 0, 1, 0.5, 0, 0, 0, 0},
		{blas.Trans, 0, 3, 4, 1, 0, 0, 0, 0, 0},
		{blas.NoTrans, 20, 64, 128, 1, 0, 1, 0, 0, 0}, // all-zero A
		{blas.Trans, 16, 8, 8, 1, 1, 0, 0, 0, 0},
	}
	crew := NewCrew(2)
	defer crew.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		name := fmt.Sprintf("%c/%dx%dx%d/alpha%g/beta%g", tc.tA, tc.m, tc.n, tc.k, tc.alpha, tc.beta)
		t.Run(name, func(t *testing.T) {
			aRows, aCols := tc.m, tc.k
			if tc.tA == blas.Trans {
				aRows, aCols = tc.k, tc.m
			}
			lda, ldb, ldc := max(1, aCols+tc.padA), max(1, tc.n+tc.padB), max(1, tc.n+tc.p)
			a := sparseMatrix(r, aRows, aCols, lda, tc.zero)
			b := sparseMatrix(r, tc.k, tc.n, ldb, 0.2)
			c0 := sparseMatrix(r, tc.m, tc.n, ldc, 0)
			want := append([]float32(nil), c0...)
			gonum.Implementation{}.Sgemm(tc.tA, blas.NoTrans, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
			for _, impl := range []BLAS{{}, {Crew: crew}} {
				got := append([]float32(nil), c0...)
				impl.Sgemm(tc.tA, blas.NoTrans, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("crew %v: C[%d] = %v (%#x), gonum gives %v (%#x)", impl.Crew != nil, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
			}
		})
	}
}

// naiveSgemmBT is C = alpha·A·Bᵀ + beta·C summed in ascending k, each
// product rounded before it is added and zero terms skipped: the order this
// package defines for the product gonum computes with dot products.
func naiveSgemmBT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			sum := c[i*ldc+j] * beta
			if beta == 0 {
				sum = 0
			}
			for l := 0; l < k; l++ {
				if t := alpha * a[i*lda+l]; t != 0 {
					sum += float32(t * b[j*ldb+l]) // rounded: never fused
				}
			}
			c[i*ldc+j] = sum
		}
	}
}

// TestSgemmTransposedB checks A·Bᵀ bit for bit against the sequential loop,
// and against gonum's dot-product order to within rounding.
func TestSgemmTransposedB(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		m, n, k     int
		alpha, beta float32
		pad         int
	}{
		{32, 64, 10, 1, 0, 0},   // dense3's gradient flowing back
		{32, 128, 64, 1, 0, 0},  // dense2's
		{32, 784, 128, 1, 0, 0}, // dense1's (the pruned program skips it)
		{5, 7, 3, 0.5, 2, 3},
		{1, 1, 0, 1, 0, 0},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k), func(t *testing.T) {
			lda, ldb, ldc := max(1, tc.k+tc.pad), max(1, tc.k+tc.pad), tc.n+tc.pad
			a := sparseMatrix(r, tc.m, tc.k, lda, 0.5)
			b := sparseMatrix(r, tc.n, tc.k, ldb, 0)
			c0 := sparseMatrix(r, tc.m, tc.n, ldc, 0)
			want, got, dots := append([]float32(nil), c0...), append([]float32(nil), c0...), append([]float32(nil), c0...)
			naiveSgemmBT(tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
			BLAS{}.Sgemm(blas.NoTrans, blas.Trans, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, dots, ldc)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("C[%d] = %v, the sequential loop gives %v", i, got[i], want[i])
				}
				// The two orders differ by rounding: a few float32 ulps of
				// the sum of the terms' magnitudes.
				row, col := i/ldc, i%ldc
				if col >= tc.n {
					continue
				}
				scale := math.Abs(float64(c0[i] * tc.beta))
				for l := 0; l < tc.k; l++ {
					scale += math.Abs(float64(tc.alpha * a[row*lda+l] * b[col*ldb+l]))
				}
				if d := math.Abs(float64(got[i] - dots[i])); d > 1e-6*scale {
					t.Fatalf("C[%d] = %v, gonum gives %v", i, got[i], dots[i])
				}
			}
		})
	}
}

// TestSgemmDelegates checks that what this BLAS does not specialise still
// works and that bad arguments panic as gonum's
// do, rather than reading out of bounds.
func TestSgemmDelegates(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6} // 2×3
	b := []float32{1, 0, 1, 0, 1, 0} // 2×3
	c := make([]float32, 4)
	BLAS{}.Sgemm(blas.Trans, blas.Trans, 2, 2, 2, 1, a, 3, b, 2, 0, c, 2) // Aᵀ·Bᵀ: gonum's
	if want := []float32{1, 1, 2, 2}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("Aᵀ·Bᵀ = %v, want %v", c, want)
	}

	bad := []struct {
		name string
		call func()
	}{
		{"short A", func() { BLAS{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a[:5], 3, b, 2, 0, c, 2) }},
		{"short C", func() { BLAS{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, c[:3], 2) }},
		{"small lda", func() { BLAS{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) }},
		{"negative m", func() { BLAS{}.Sgemm(blas.Trans, blas.NoTrans, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) }},
		{"short Bᵀ", func() { BLAS{}.Sgemm(blas.NoTrans, blas.Trans, 2, 2, 3, 1, a, 3, b[:5], 3, 0, c, 2) }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tc.call()
		})
	}
}

// BenchmarkSgemm times every product of a training step, at the default
// batch of 32 and at the large batches of make bench's sweep, with the
// sparsity of real training: images about 80% zeros, ReLU outputs and their
// gradients about half.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	type shape struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
		zero    float64 // fraction of A that is 0
	}
	var shapes []shape
	for _, batch := range []int{32, 256, 2048} {
		for _, s := range []shape{
			{"dense1-forward", blas.NoTrans, blas.NoTrans, batch, 128, 784, 0.8},
			{"dense1-weight-grad", blas.Trans, blas.NoTrans, 784, 128, batch, 0.8},
			{"dense2-forward", blas.NoTrans, blas.NoTrans, batch, 64, 128, 0.5},
			{"dense2-weight-grad", blas.Trans, blas.NoTrans, 128, 64, batch, 0.5},
			{"dense2-input-grad", blas.NoTrans, blas.Trans, batch, 128, 64, 0.5},
			{"dense3-forward", blas.NoTrans, blas.NoTrans, batch, 10, 64, 0.5},
			{"dense3-weight-grad", blas.Trans, blas.NoTrans, 64, 10, batch, 0.5},
			{"dense3-input-grad", blas.NoTrans, blas.Trans, batch, 64, 10, 0},
		} {
			s.name = fmt.Sprintf("batch=%d/%s", batch, s.name)
			shapes = append(shapes, s)
		}
	}
	// A crew without helpers runs everything on the caller but keeps the
	// scratch memory between calls, as training does.
	alone, crew := NewCrew(0), NewCrew(runtime.GOMAXPROCS(0)-1)
	defer crew.Close()
	impls := []struct {
		name string
		impl blas.Float32
	}{{"gonum", gonum.Implementation{}}, {"kernels", BLAS{Crew: alone}}, {"kernels-crew", BLAS{Crew: crew}}}
	for _, s := range shapes {
		aRows, aCols := s.m, s.k
		if s.tA == blas.Trans {
			aRows, aCols = s.k, s.m
		}
		bRows, bCols := s.k, s.n
		if s.tB == blas.Trans {
			bRows, bCols = s.n, s.k
		}
		a := sparseMatrix(r, aRows, aCols, aCols, s.zero)
		bm := sparseMatrix(r, bRows, bCols, bCols, 0)
		c := make([]float32, s.m*s.n)
		for _, im := range impls {
			b.Run(s.name+"/"+im.name, func(b *testing.B) {
				for b.Loop() {
					im.impl.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, aCols, bm, bCols, 0, c, s.n)
				}
			})
		}
	}
}
