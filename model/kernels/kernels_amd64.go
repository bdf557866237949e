package kernels

const haveAVXKernels = true

// Implemented in adam_amd64.s; len(w) must be a multiple of 8.
//
//go:noescape
func adamF32AVX(w, g, m, v []float32, k *adamConsts32)

// Implemented in adam_amd64.s; len(w) must be a multiple of 16.
//
//go:noescape
func adamF32AVX512(w, g, m, v []float32, k *adamConsts32)

// Implemented in accumulate512_amd64.s: accumulateRowAVX, sixteen lanes.
//
//go:noescape
func accumulateRowAVX512(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool)

// Implemented in accumulate_amd64.s: c[j] += vs[q]·b[ls[q]·ldb + j] for
// every j < len(c) and every q, in order, starting from 0 with fromZero.
//
//go:noescape
func accumulateRowAVX(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool)

// Implemented in collect_amd64.s.
//
//go:noescape
func collectAVX(a []float32, alpha float32, base int32, ls []int32, vs []float32) int

// Implemented in collect_amd64.s; len(a) must be a multiple of 16.
//
//go:noescape
func collectAVX512(a []float32, alpha float32, base int32, ls []int32, vs []float32) int

// Implemented in transpose_amd64.s: the transpose of an 8×(8·blocks) strip.
//
//go:noescape
func transpose8AVX(dst []float32, ldd int, src []float32, lds int, blocks int)

// Implemented in relu_amd64.s; lengths a multiple of 8.
//
//go:noescape
func biasReLUAVX(h, b []float32, relu bool)

//go:noescape
func reluGradAVX(dz, y, dy []float32)
