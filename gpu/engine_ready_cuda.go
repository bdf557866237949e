//go:build cuda

package gpu

import (
	"fmt"
	"runtime"
	"time"

	G "gorgonia.org/gorgonia"
)

// engineStartTimeout bounds the wait for Gorgonia's CUDA engines to start.
const engineStartTimeout = 30 * time.Second

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
// the queue and answered means the handle exists before the first matrix
// product asks for it. The gap is in Gorgonia's code whatever else goes
// wrong; the cuBLAS and module-load failures seen on an H100 had another
// cause, CUDA calls on a thread without the context, which onOneThread
// fixes. The wait costs one round trip per machine, once.
func waitForEngines(vm G.VM) error {
	cm, ok := vm.(G.CUDAMachine)
	if !ok {
		return nil // nothing of this graph runs on the GPU
	}
	// Engines, not Contexts: Contexts copies each engine while its Run may
	// still be writing the cuBLAS handle into it (a data race that go test
	// -race reports); an engine's context, taken by address, is ready from
	// before Run starts.
	engines := cm.Engines()
	for i := range engines {
		ctx := engines[i].Context()
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
