package kernels

import (
	"golang.org/x/sys/cpu"
	"gonum.org/v1/gonum/blas/gonum"
)

// axpy computes y[j] += alpha*x[j] for j < len(y), rounding the product
// before the sum. It serves machines without the vector kernels.
func axpy(alpha float32, x, y []float32) {
	gonum.Implementation{}.Saxpy(len(y), alpha, x, 1, y, 1)
}

// hasAVX reports whether the assembly kernels can run here: an amd64 CPU
// with AVX2 and POPCNT, whose YMM registers the operating system saves.
func hasAVX() bool { return haveAVXKernels && cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT }

// hasAVX512 reports whether the sixteen-lane kernels can run too: AVX-512
// Foundation, with ZMM registers the operating system saves. They give the
// same bits as the eight-lane ones.
func hasAVX512() bool { return hasAVX() && cpu.X86.HasAVX512F }
