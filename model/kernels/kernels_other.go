//go:build !amd64

package kernels

const haveAVXKernels = false

func axpyAVX(alpha float32, x, y []float32) { panic("kernels: no AVX kernels on this architecture") }

func adamF32AVX(w, g []float32, m, v []float64, k *AdamConsts) {
	panic("kernels: no AVX kernels on this architecture")
}
