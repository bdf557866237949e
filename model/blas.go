package model

import (
	G "gorgonia.org/gorgonia"

	"mnist/model/kernels"
)

// Gorgonia runs the matrix products of its stock ops through one
// process-wide BLAS. Ours is gonum's with a faster Sgemm that gives
// bit-identical results, so this choice changes how long the stock graphs
// take and nothing else. It has no crew of helpers: those belong to each
// backend, whose fused ops and Adam use them directly.
func init() { G.Use(kernels.BLAS{}) }
