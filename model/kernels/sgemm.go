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

// sgemmNotNot adds alpha·A·B into rows [lo, hi) of C, A being m×k: row i
// of C gathers the rows of B picked by the nonzeros of row i of A.
func sgemmNotNot(lo, hi, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	var terms termList
	for i := lo; i < hi; i++ {
		ci := c[i*ldc : i*ldc+n]
		for l0 := 0; l0 < k; l0 += termChunk {
			ls, vs := terms.collect(a[i*lda:], 1, l0, min(k, l0+termChunk), alpha)
			accumulateRow(ci, b, ldb, ls, vs)
		}
	}
}

// sgemmTransNot adds alpha·Aᵀ·B into rows [lo, hi) of C, A being k×m: row
// i of C gathers the rows of B picked by the nonzeros of column i of A.
func sgemmTransNot(lo, hi, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	var terms termList
	for i := lo; i < hi; i++ {
		ci := c[i*ldc : i*ldc+n]
		for l0 := 0; l0 < k; l0 += termChunk {
			ls, vs := terms.collect(a[i:], lda, l0, min(k, l0+termChunk), alpha)
			accumulateRow(ci, b, ldb, ls, vs)
		}
	}
}

// termChunk bounds a termList, so that it lives on the goroutine's stack;
// longer sums are done a chunk at a time, in order, which rounds the same.
const termChunk = 1024

// termList holds the nonzero terms of one sum: the rows of B to add and the
// factors to scale them by.
type termList struct {
	ls [termChunk]int32
	vs [termChunk]float32
}

// collect lists, for l in [from, to), the terms alpha·a[l·stride] that are
// not zero, as gonum's loops skip them. The branch-free loop writes every
// candidate and advances only past the nonzero ones.
func (t *termList) collect(a []float32, stride, from, to int, alpha float32) ([]int32, []float32) {
	count := 0
	for l := from; l < to; l++ {
		v := alpha * a[l*stride]
		t.ls[count] = int32(l)
		t.vs[count] = v
		if v != 0 {
			count++
		}
	}
	return t.ls[:count], t.vs[:count]
}

// accumulateRow adds vs[q]·B[ls[q], 0:len(c)] into c for every q in order,
// keeping the sums in registers 64 or 8 columns at a time.
func accumulateRow(c, b []float32, ldb int, ls []int32, vs []float32) {
	if len(ls) == 0 {
		return
	}
	n, j := len(c), 0
	if hasAVX() {
		for ; j+64 <= n; j += 64 {
			accumulate64AVX(c[j:j+64], b[j:], ldb, ls, vs)
		}
		for ; j+8 <= n; j += 8 {
			accumulate8AVX(c[j:j+8], b[j:], ldb, ls, vs)
		}
		for ; j < n; j++ {
			sum := c[j]
			for q, l := range ls {
				sum += vs[q] * b[int(l)*ldb+j]
			}
			c[j] = sum
		}
		return
	}
	for q, l := range ls {
		row := int(l) * ldb
		axpy(vs[q], b[row:row+n], c)
	}
}
