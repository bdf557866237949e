//go:build !amd64

package kernels

const haveAVXKernels = false

func adamF32AVX(w, g, m, v []float32, k *adamConsts32) {
	panic("kernels: no AVX kernels on this architecture")
}

func collectAVX(a []float32, alpha float32, base int32, ls []int32, vs []float32) int {
	panic("kernels: no AVX kernels on this architecture")
}

func transpose8AVX(dst []float32, ldd int, src []float32, lds int, blocks int) {
	panic("kernels: no AVX kernels on this architecture")
}

func accumulateRowAVX(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool) {
	panic("kernels: no AVX kernels on this architecture")
}

func adamF32AVX512(w, g, m, v []float32, k *adamConsts32) {
	panic("kernels: no AVX kernels on this architecture")
}

func accumulateRowAVX512(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool) {
	panic("kernels: no AVX kernels on this architecture")
}

func collectAVX512(a []float32, alpha float32, base int32, ls []int32, vs []float32) int {
	panic("kernels: no AVX kernels on this architecture")
}

func biasReLUAVX(h, b []float32, relu bool) {
	panic("kernels: no AVX kernels on this architecture")
}

func reluGradAVX(dz, y, dy []float32) {
	panic("kernels: no AVX kernels on this architecture")
}
