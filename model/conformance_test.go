package model_test

import (
	"testing"

	"gorgonia.org/tensor"

	"mnist/model"
	"mnist/model/enginetest"
)

// TestGraphEngineConformance runs the engine conformance test against the
// plain-Go reference for every form of the graph engine: float64 must agree
// to rounding, float32 to 1e-4. The CUDA engines run the same test in gpu/.
func TestGraphEngineConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		dt   tensor.Dtype
		tol  float64
		opts []model.GraphOption
	}{
		{"float64", tensor.Float64, 1e-9, nil},
		{"float32", tensor.Float32, 1e-4, nil},
		{"float64 pruned", tensor.Float64, 1e-9, []model.GraphOption{model.WithPrunedProgram()}},
		{"float32 pruned fused (the CPU build's)", tensor.Float32, 1e-4, []model.GraphOption{model.WithPrunedProgram(), model.WithFusedOps()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enginetest.Conformance(t, tc.dt, tc.tol, func(cfg model.Config) (model.Engine, error) {
				return model.NewGraphEngine(cfg, tc.opts...)
			})
		})
	}
}
