package model

import (
	"mnist/data"
	"mnist/model/modeltest"
)

// syntheticSet is modeltest.LearnableSet, named for these tests.
func syntheticSet(n int, seed uint64) *data.Set { return modeltest.LearnableSet(n, seed) }
