//go:build cuda

package gpu

import (
	"fmt"
	"runtime"
	"time"

	G "gorgonia.org/gorgonia"

	"mnist/model"
)

// engineStartTimeout bounds the wait for Gorgonia's CUDA engines to start.
const engineStartTimeout = 30 * time.Second

// newGorgoniaBackend is the Gorgonia engine: the model's graph on Gorgonia's
// CUDA tape machine, each machine waited for before its first run. It is
// built, and closed, on one OS thread (onOneThread).
func newGorgoniaBackend(cfg model.Config) (model.Backend, error) {
	var b model.Backend
	var err error
	onOneThread(func() {
		b, err = model.NewGraphBackend(cfg, model.WithMachineReady(waitForEngines))
	})
	if err != nil {
		return nil, err
	}
	return gorgoniaBackend{b}, nil
}

// gorgoniaBackend closes its machines on one OS thread too: Gorgonia's
// engine Close also sets its context current, then unloads modules and
// frees memory in separate cgo calls.
type gorgoniaBackend struct{ model.Backend }

func (b gorgoniaBackend) Close() error {
	var err error
	onOneThread(func() { err = b.Backend.Close() })
	return err
}

// onOneThread runs fn with the goroutine locked to its OS thread.
//
// A CUDA context is current per OS thread, and a goroutine may move to
// another thread between any two cgo calls. Gorgonia's NewTapeMachine
// creates its context current on the calling thread, and then, for each
// kernel module, calls cuCtxSetCurrent and cuModuleLoadData separately,
// without locking the thread. A move in between loads the module on a thread
// with no context current: on the H100, TestGraphOnGPU failed with
// `Failed to load module "elembinop" ... InvalidContext`. (RunAll locks its
// thread itself, and every batch of GPU work sets the context first.)
func onOneThread(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fn()
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
