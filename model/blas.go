package model

import (
	G "gorgonia.org/gorgonia"

	"mnist/model/kernels"
)

// useFastBLAS makes Gorgonia run the matrix products of its stock ops
// through ours: gonum's BLAS with a faster Sgemm that gives bit-identical
// results, so the choice changes how long the stock graphs take and nothing
// else. Gorgonia keeps one BLAS for the whole process, so this is set when
// an engine is built rather than at import time; every engine sets the same
// value. It has no crew of helpers: those belong to each engine, whose fused
// ops and optimizer use them directly.
func useFastBLAS() { G.Use(kernels.BLAS{}) }
