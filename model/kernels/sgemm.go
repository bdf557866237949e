package kernels

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS is gonum's pure-Go BLAS with a faster Sgemm for the two products a
// dense layer's training step is made of: C = A·B (forward, and the
// gradient flowing back through a layer) and C = Aᵀ·B (the weights'
// gradient). Every other routine, and Sgemm with B transposed, is gonum's.
// Install it with gorgonia.Use.
type BLAS struct {
	gonum.Implementation
}

// sgemmMinPiece is the number of C rows below which a piece of a product is
// not worth a goroutine. A batch of 32 splits into two pieces of 16.
const sgemmMinPiece = 16

// sgemmMinWork is the size (m·n·k) below which a product runs on the calling
// goroutine alone: starting a goroutine costs about a microsecond.
const sgemmMinWork = 1 << 17

// Sgemm computes C = alpha·op(A)·op(B) + beta·C. For op(B) = B it gives the
// bit-identical result of gonum's Sgemm: each element of C sums its products
// in the same order (ascending k), each product rounded before it is added,
// and zero elements of A are skipped as gonum skips them. That skipping is
// where much of the speed comes from on MNIST, whose images are about 80%
// zeros.
func (impl BLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans := tA == blas.Trans || tA == blas.ConjTrans
	if tB != blas.NoTrans || !(aTrans || tA == blas.NoTrans) || !sgemmArgsFit(aTrans, m, n, k, a, lda, b, ldb, c, ldc) {
		// gonum's own checks panic with the precise complaint.
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 || ((alpha == 0 || k == 0) && beta == 1) {
		return
	}
	minPiece := sgemmMinPiece
	if m*n*k < sgemmMinWork {
		minPiece = m
	}
	split(m, 1, minPiece, func(lo, hi int) {
		scaleRows(c, ldc, lo, hi, n, beta)
		if aTrans {
			sgemmTransNot(lo, hi, n, k, alpha, a, lda, b, ldb, c, ldc)
		} else {
			sgemmNotNot(lo, hi, n, k, alpha, a, lda, b, ldb, c, ldc)
		}
	})
}

// sgemmArgsFit reports whether the dimensions are valid and the slices long
// enough, the conditions under which gonum's Sgemm would not panic.
func sgemmArgsFit(aTrans bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	if m < 0 || n < 0 || k < 0 || ldb < max(1, n) || ldc < max(1, n) {
		return false
	}
	if m == 0 || n == 0 {
		return true
	}
	aRows, aCols := m, k
	if aTrans {
		aRows, aCols = k, m
	}
	if lda < max(1, aCols) {
		return false
	}
	if aRows > 0 && len(a) < (aRows-1)*lda+aCols {
		return false
	}
	if k > 0 && len(b) < (k-1)*ldb+n {
		return false
	}
	return len(c) >= (m-1)*ldc+n
}

// scaleRows multiplies rows [lo, hi) of C by beta, as gonum does first.
func scaleRows(c []float32, ldc, lo, hi, n int, beta float32) {
	if beta == 1 {
		return
	}
	for i := lo; i < hi; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// sgemmNotNot adds alpha·A·B into rows [lo, hi) of C, A being m×k.
func sgemmNotNot(lo, hi, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := lo; i < hi; i++ {
		ci := c[i*ldc : i*ldc+n]
		for l, v := range a[i*lda : i*lda+k] {
			if t := alpha * v; t != 0 {
				axpy(t, b[l*ldb:l*ldb+n], ci)
			}
		}
	}
}

// sgemmTransNot adds alpha·Aᵀ·B into rows [lo, hi) of C, A being k×m.
func sgemmTransNot(lo, hi, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for l := 0; l < k; l++ {
		bl := b[l*ldb : l*ldb+n]
		for i, v := range a[l*lda+lo : l*lda+hi] {
			if t := alpha * v; t != 0 {
				ci := c[(lo+i)*ldc : (lo+i)*ldc+n]
				axpy(t, bl, ci)
			}
		}
	}
}
