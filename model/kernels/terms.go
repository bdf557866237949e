package kernels

// termChunk bounds a termList, so that it lives on the goroutine's stack;
// longer sums are done a chunk at a time, in order, which rounds the same.
const termChunk = 1024

// termList holds the nonzero terms of one sum: the rows of B to add and the
// factors to scale them by.
type termList struct {
	ls [termChunk]int32
	vs [termChunk]float32
}

// collect lists the terms alpha·a[j] that are not zero (NaN counts as not
// zero, as in gonum's loops), numbered from base, in order. len(a) must be
// at most termChunk. The returned slices alias t.
func (t *termList) collect(a []float32, alpha float32, base int) ([]int32, []float32) {
	count, done := 0, 0
	if hasAVX512() {
		done = len(a) &^ 15
		count = collectAVX512(a[:done], alpha, int32(base), t.ls[:], t.vs[:])
	}
	if end := len(a) &^ 7; hasAVX() && end > done {
		count += collectAVX(a[done:end], alpha, int32(base+done), t.ls[count:], t.vs[count:])
		done = end
	}
	for j := done; j < len(a); j++ {
		v := alpha * a[j]
		t.ls[count] = int32(base + j)
		t.vs[count] = v
		if v != 0 { // branch-free: write every candidate, keep the nonzero
			count++
		}
	}
	return t.ls[:count], t.vs[:count]
}

// accumulateRow adds vs[q]·B[ls[q], 0:len(c)] into c for every q in order,
// keeping the sums in registers 64 or 8 columns at a time (the last few
// through masked loads). With fromZero the sums start from zero instead of
// from c.
func accumulateRow(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool) {
	if len(c) == 0 {
		return
	}
	if len(ls) > 0 { // the kernel trusts the rows to be in b; ls ascends
		if l := int(ls[len(ls)-1]); l < 0 || len(b) < l*ldb+len(c) {
			panic("kernels: accumulateRow: row out of range")
		}
	}
	if !hasAVX() {
		if fromZero {
			clear(c)
		}
		accumulateRowGeneric(c, b, ldb, ls, vs)
		return
	}
	if hasAVX512() {
		accumulateRowAVX512(c, b, ldb, ls, vs, fromZero)
		return
	}
	accumulateRowAVX(c, b, ldb, ls, vs, fromZero)
}

// accumulateRowGeneric is accumulateRow for machines without the vector
// kernels: one gonum axpy a term, which rounds the same.
func accumulateRowGeneric(c, b []float32, ldb int, ls []int32, vs []float32) {
	for q, l := range ls {
		row := int(l) * ldb
		axpy(vs[q], b[row:row+len(c)], c)
	}
}
