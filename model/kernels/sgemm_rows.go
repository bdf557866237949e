package kernels

// rowBlock is the destination of a product: C, its leading dimension and
// width, and whether its rows start from zero (beta = 0) rather than from
// what they hold.
type rowBlock struct {
	c        []float32
	ldc, n   int
	fromZero bool
}

func (d rowBlock) row(i int) []float32 { return d.c[i*d.ldc : i*d.ldc+d.n] }

// sgemmNotNot adds alpha·A·B into rows [lo, hi) of C, A being m×k: row i of
// C gathers the rows of B picked by the nonzeros of row i of A.
func sgemmNotNot(dst rowBlock, lo, hi, k int, alpha float32, a []float32, lda int, b []float32, ldb int) {
	var terms termList
	for i := lo; i < hi; i++ {
		fromZero := dst.fromZero
		for l0 := 0; l0 < k || l0 == 0; l0 += termChunk {
			l1 := min(k, l0+termChunk)
			ls, vs := terms.collect(a[i*lda+l0:i*lda+l1], alpha, l0)
			accumulateRow(dst.row(i), b, ldb, ls, vs, fromZero)
			fromZero = false // later chunks add to what the first wrote
		}
	}
}

// sgemmTransNot adds alpha·Aᵀ·B into rows [lo, hi) of C, A being k×m: row i
// of C gathers the rows of B picked by the nonzeros of column i of A. A's
// columns are strided, so its rows are scanned twice, contiguously: once to
// count each column's nonzeros, once to place them in per-column lists, in
// ascending l within each.
func sgemmTransNot(dst rowBlock, lo, hi, k int, alpha float32, a []float32, lda int, b []float32, ldb int) {
	width := hi - lo
	var terms termList
	rowChunks := func(each func(l int, js []int32, vs []float32)) {
		for l := 0; l < k; l++ {
			for j0 := 0; j0 < width; j0 += termChunk {
				j1 := min(width, j0+termChunk)
				js, vs := terms.collect(a[l*lda+lo+j0:l*lda+lo+j1], alpha, j0)
				each(l, js, vs)
			}
		}
	}
	// start[j]..start[j+1] will hold column j's terms.
	start := make([]int32, width+1)
	rowChunks(func(_ int, js []int32, _ []float32) {
		for _, j := range js {
			start[j+1]++
		}
	})
	for j := 0; j < width; j++ {
		start[j+1] += start[j]
	}
	next := append([]int32(nil), start[:width]...)
	ls := make([]int32, start[width])
	vs := make([]float32, start[width])
	rowChunks(func(l int, js []int32, vals []float32) {
		for q, j := range js {
			p := next[j]
			ls[p], vs[p] = int32(l), vals[q]
			next[j]++
		}
	})
	for j := 0; j < width; j++ {
		accumulateRow(dst.row(lo+j), b, ldb, ls[start[j]:start[j+1]], vs[start[j]:start[j+1]], dst.fromZero)
	}
}
