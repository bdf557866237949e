package kernels

const haveAVXKernels = true

// Implemented in axpy_amd64.s.
//
//go:noescape
func axpyAVX(alpha float32, x, y []float32)

// Implemented in adam_amd64.s. It updates the first len(w) &^ 3 elements.
//
//go:noescape
func adamF32AVX(w, g []float32, m, v []float64, k *AdamConsts)
