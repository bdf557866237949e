//go:build cuda

package gpu

import (
	"testing"

	"gorgonia.org/tensor"

	"mnist/model"
	"mnist/model/enginetest"
)

// TestEngineConformance runs the conformance test every engine runs
// (model/enginetest) against the CUDA engines: log-probabilities, loss,
// hits, every gradient and two steps of each optimizer against the float64
// reference, within 1e-4. The CPU graph engine runs it in model's tests.
func TestEngineConformance(t *testing.T) {
	requireNativeGPU(t)
	t.Run(EngineNative, func(t *testing.T) {
		enginetest.Conformance(t, tensor.Float32, 1e-4, func(cfg model.Config) (model.Engine, error) {
			return newNativeEngine(0, cfg)
		})
	})
	for _, name := range []string{EngineCUDAGraph, EngineFused, EnginePersistent} {
		t.Run(name, func(t *testing.T) {
			enginetest.Conformance(t, tensor.Float32, 1e-4, enginetest.NewEngine(testEngines()[name]))
		})
	}
	t.Run(EngineGorgonia, func(t *testing.T) {
		enginetest.Conformance(t, tensor.Float32, 1e-4, func(cfg model.Config) (model.Engine, error) {
			e, err := newGorgoniaEngine(cfg)
			// Kept open, as the other Gorgonia GPU tests keep theirs:
			// closing and then building machines in one process has not
			// been run on a GPU yet.
			return keptOpen{e}, err
		})
	})
}

// keptOpen is an engine whose Close does nothing.
type keptOpen struct{ model.Engine }

func (keptOpen) Close() error { return nil }
