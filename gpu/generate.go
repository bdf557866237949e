package gpu

// The cuda build embeds kernels that nvcc compiles, not Go: PTX files under
// kernels/ and the small generated Go files that embed and describe them
// (ptx_cuda.go, kernels_ptx_cuda.go). All are committed, so building needs no
// nvcc; after changing kernels/*.cu or Gorgonia's version, regenerate with
//
//	go generate ./gpu/     (or make gen-ptx, make gen-kernels)
//
// which needs nvcc (CUDA_HOME or PATH) but no GPU. ptx_test.go and
// kernels_gen_test.go check that the committed files are what these make.

//go:generate bash ../scripts/gen-ptx.sh
//go:generate bash ../scripts/gen-kernels.sh
