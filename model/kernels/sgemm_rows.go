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

// sgemmRows adds alpha·A·B into rows [lo, lo+rows) of C, A being rows×k
// (its row r is C's row lo+r): row i of C gathers the rows of B picked by
// the nonzeros of row i of A.
func sgemmRows(dst rowBlock, lo, rows, k int, alpha float32, a []float32, lda int, b []float32, ldb int) {
	var terms termList
	for r := 0; r < rows; r++ {
		fromZero := dst.fromZero
		for l0 := 0; l0 < k || l0 == 0; l0 += termChunk {
			l1 := min(k, l0+termChunk)
			ls, vs := terms.collect(a[r*lda+l0:r*lda+l1], alpha, l0)
			accumulateRow(dst.row(lo+r), b, ldb, ls, vs, fromZero)
			fromZero = false // later chunks add to what the first wrote
		}
	}
}

// kChunk is how many rows of A (and of B, n wide) sgemmTransNot takes at a
// time: kChunkBytes of B, so that they stay in a core's cache while every
// row of C uses them.
func kChunk(n int) int {
	return max(16, min(termChunk, kChunkBytes/4/max(n, 1)))
}

const kChunkBytes = 32 << 10

// sgemmTransNot adds alpha·Aᵀ·B into rows [lo, hi) of C, A being k×m: row i
// of C gathers the rows of B picked by the nonzeros of column i of A. Those
// columns are strided, so each chunk of them is transposed into contiguous
// rows first; each row's nonzeros are then found as in A·B, in ascending l,
// which is gonum's order.
//
// The sum runs over k a chunk at a time, every row of C taking its share of
// one chunk before any takes the next: at large batch sizes (k is the
// batch) B does not fit in the cache, and a row's nonzeros pick rows of B
// from all over it; a chunk of B's rows stays cached while all the rows of
// C use it, and the transposed chunk of A is small. Each element still sums
// in ascending l: a chunk starts from what the last one stored, which
// rounds exactly as keeping the sum in a register.
func sgemmTransNot(crew *Crew, dst rowBlock, lo, hi, k int, alpha float32, a []float32, lda int, b []float32, ldb int) {
	width := hi - lo
	if k == 0 {
		sgemmRows(dst, lo, width, 0, alpha, nil, 0, b, ldb)
		return
	}
	var terms termList
	kc := kChunk(dst.n)
	at := crew.buffer(width * min(k, kc))
	defer crew.release(at)
	for l0 := 0; l0 < k; l0 += kc {
		l1 := min(k, l0+kc)
		w := l1 - l0
		transpose(*at, w, a[l0*lda+lo:], lda, w, width)
		for r := 0; r < width; r++ {
			ls, vs := terms.collect((*at)[r*w:(r+1)*w], alpha, l0)
			accumulateRow(dst.row(lo+r), b, ldb, ls, vs, dst.fromZero && l0 == 0)
		}
	}
}
