package model

import (
	G "gorgonia.org/gorgonia"

	"mnist/model/kernels"
)

// Gorgonia runs every CPU matrix product through one process-wide BLAS. Ours
// is gonum's with a faster Sgemm that gives bit-identical results, so this
// choice changes how long training takes and nothing else; it is made once,
// here, so the trainer, the tests and the benchmarks all run the same code.
func init() { G.Use(kernels.BLAS{}) }
