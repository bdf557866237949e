package kernels

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS is gonum's pure-Go BLAS with a faster Sgemm for the three products a
// dense layer's training step is made of: C = A·B (forward), C = Aᵀ·B (the
// weights' gradient) and C = A·Bᵀ (the gradient flowing back to the layer
// below). Every other routine is gonum's. Install it with gorgonia.Use, or
// call it directly. With a Crew, the large products are shared with its
// helpers; the zero value runs them on the caller.
type BLAS struct {
	gonum.Implementation
	Crew *Crew
}

// sgemmMinPiece is the number of C rows below which a piece of a product is
// not worth handing to a helper. A batch of 32 splits into two pieces of 16.
const sgemmMinPiece = 16

// sgemmMinWork is the size (m·n·k) below which a product runs on the calling
// goroutine alone. Only the first layer's products (3.2 M multiply-adds at
// batch 32) are split: also splitting the second layer's (262 K) made a
// training step about 10% slower on a 2-vCPU machine, where the second core
// brings well under 2×.
const sgemmMinWork = 1 << 20

// Sgemm computes C = alpha·op(A)·op(B) + beta·C. Each element of C sums its
// products in ascending k, each product rounded before it is added, and the
// zero elements of A are skipped. For op(B) = B that is exactly gonum's order,
// and the result is bit-identical to gonum's Sgemm. For op(B) = Bᵀ gonum
// sums with several partial dot products, which rounds differently; here
// every product keeps the same order as the other two. A transposed operand
// is first transposed into scratch memory (eight by eight, in registers), so
// that all three products run the same row kernel over contiguous rows.
// Skipping zeros is where much of the speed comes from: MNIST images are
// about 80% zeros and ReLU zeroes about half of each hidden layer.
func (impl BLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans := tA == blas.Trans || tA == blas.ConjTrans
	bTrans := tB == blas.Trans || tB == blas.ConjTrans
	known := (aTrans || tA == blas.NoTrans) && (bTrans || tB == blas.NoTrans)
	if !known || (aTrans && bTrans) || !sgemmArgsFit(aTrans, bTrans, m, n, k, a, lda, b, ldb, c, ldc) {
		// gonum's own checks panic with the precise complaint.
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if m == 0 || n == 0 || ((alpha == 0 || k == 0) && beta == 1) {
		return
	}
	if bTrans {
		// Bᵀ's rows are B's columns, strided: one transpose makes them
		// contiguous for every row of C.
		bt := impl.Crew.buffer(k * n)
		defer impl.Crew.release(bt)
		transpose(*bt, n, b, ldb, n, k)
		b, ldb = *bt, n
	}
	minPiece := sgemmMinPiece
	if m*n*k < sgemmMinWork {
		minPiece = m
	}
	impl.Crew.split(m, 1, minPiece, func(lo, hi int) {
		if beta != 0 {
			scaleRows(c, ldc, lo, hi, n, beta)
		}
		dst := rowBlock{c: c, ldc: ldc, n: n, fromZero: beta == 0}
		if aTrans {
			sgemmTransNot(impl.Crew, dst, lo, hi, k, alpha, a, lda, b, ldb)
		} else {
			sgemmRows(dst, lo, hi-lo, k, alpha, a[lo*lda:], lda, b, ldb)
		}
	})
}

// sgemmArgsFit reports whether the dimensions are valid and the slices long
// enough, the conditions under which gonum's Sgemm would not panic.
func sgemmArgsFit(aTrans, bTrans bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	aRows, aCols := stored(aTrans, m, k)
	bRows, bCols := stored(bTrans, k, n)
	if m < 0 || n < 0 || k < 0 || lda < max(1, aCols) || ldb < max(1, bCols) || ldc < max(1, n) {
		return false
	}
	if m == 0 || n == 0 {
		return true
	}
	return holds(a, aRows, aCols, lda) && holds(b, bRows, bCols, ldb) && holds(c, m, n, ldc)
}

// stored is the shape in memory of a matrix used as rows×cols, transposed
// or not.
func stored(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

// holds reports whether s is long enough for a rows×cols matrix with
// leading dimension ld.
func holds(s []float32, rows, cols, ld int) bool {
	return rows == 0 || len(s) >= (rows-1)*ld+cols
}

// scaleRows multiplies rows [lo, hi) of C by beta, as gonum does first.
func scaleRows(c []float32, ldc, lo, hi, n int, beta float32) {
	for i := lo; i < hi; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] *= beta
		}
	}
}
