//go:build cuda

package gpu

import (
	"fmt"

	"gorgonia.org/cu"

	"mnist/model"
)

// deviceOptimizer is an optimizer of the native engine. Its state is one
// flat device buffer per slot, laid out like the parameters, in the order of
// the model package's slots for the same optimizer, so that State and
// SetState exchange it as model.OptimizerState. Each optimizer is one file:
// adam_cuda.go, sgd_cuda.go.
type deviceOptimizer interface {
	name() string
	slots() int
	// prepare allocates and fills, in mem, what updateAt and fusedArgs
	// read besides the slots; the kernels are loaded. Only the engines
	// whose steps use those call it. Without it, their kernels work the
	// step size out: the same results, a little slower (adam_cuda.go).
	prepare(l lane, mem *deviceMemory) error
	// release frees, from mem, what prepare made, if it did.
	release(mem *deviceMemory) error
	// update launches step t (1-based) over n floats of the flat buffers.
	update(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, t int64) error
	// updateAt launches the next step with nothing that changes from one
	// step to the next in its arguments: the count of updates done so far
	// is read on the device from steps (an int64), for a captured step;
	// counted says that the count already includes this update.
	updateAt(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, steps cu.DevicePtr, counted bool) error
	// fusedArgs are mlp.cu's fused_update's and train_steps's arguments
	// from optimizer on: which update they apply, that update's constants,
	// and the table of step sizes prepare made, with its length.
	fusedArgs() []kernelArg
}

func newDeviceOptimizer(c model.OptimizerConfig) (deviceOptimizer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Name {
	case "adam":
		return &adamOnGPU{c: c}, nil
	case "sgd":
		return sgdOnGPU{c}, nil
	}
	return nil, fmt.Errorf("the native engine has no optimizer %q", c.Name)
}
