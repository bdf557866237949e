package kernels

const haveAVXKernels = true

// Implemented in adam_amd64.s; len(w) must be a multiple of 8.
//
//go:noescape
func adamF32AVX(w, g, m, v []float32, k *adamConsts32)

// Implemented in accumulate_amd64.s: c[0:64] (or c[0:8]) += vs[q]·b[ls[q]·ldb:]
// for every q, in order.
//
//go:noescape
func accumulate64AVX(c, b []float32, ldb int, ls []int32, vs []float32)

//go:noescape
func accumulate8AVX(c, b []float32, ldb int, ls []int32, vs []float32)

// Implemented in collect_amd64.s.
//
//go:noescape
func collectAVX(a []float32, alpha float32, base int32, ls []int32, vs []float32) int

// Implemented in transpose_amd64.s: the transpose of an 8×(8·blocks) strip.
//
//go:noescape
func transpose8AVX(dst []float32, ldd int, src []float32, lds int, blocks int)

// Implemented in accumulate_amd64.s: accumulate8AVX for the first
// len(c) < 8 columns, the others neither read nor written.
//
//go:noescape
func accumulateTailAVX(c, b []float32, ldb int, ls []int32, vs []float32)
