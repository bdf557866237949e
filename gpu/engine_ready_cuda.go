//go:build cuda

package gpu

import (
	"fmt"
	"time"

	G "gorgonia.org/gorgonia"

	"mnist/model"
)

// engineStartTimeout bounds the wait for Gorgonia's CUDA engines to start.
const engineStartTimeout = 30 * time.Second

// newGorgoniaBackend is the Gorgonia engine: the model's graph on Gorgonia's
// CUDA tape machine, each machine waited for before its first run.
func newGorgoniaBackend(cfg model.Config) (model.Backend, error) {
	return model.NewGraphBackend(cfg, model.WithMachineReady(waitForEngines))
}

// waitForEngines returns once every CUDA engine of vm is serving work.
//
// Gorgonia's CUDA engine creates its cuBLAS handle on a goroutine of its own
// (cuda.Engine.Run) that NewTapeMachine starts but does not wait for. Run
// serves the engine's work queue only after that, so a no-op sent through
// the queue and answered means the handle has been made before the first
// matrix product asks for it. (This ordering gap is read from Gorgonia's
// code. It did not cure the NotInitialized failures seen in the H100 tests:
// those came after closed machines, see newTestGraph in the tests.)
func waitForEngines(vm G.VM) error {
	cm, ok := vm.(G.CUDAMachine)
	if !ok {
		return nil // nothing of this graph runs on the GPU
	}
	for i, ctx := range cm.Contexts() {
		done := make(chan error, 1)
		go func() { done <- ctx.Do(func() error { return nil }) }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("CUDA engine %d: %w", i, err)
			}
		case <-time.After(engineStartTimeout):
			return fmt.Errorf("CUDA engine %d did not start within %v", i, engineStartTimeout)
		}
	}
	return nil
}
