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
	// update launches step t (1-based) over n floats of the flat buffers.
	update(k *kernels, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, t int64) error
}

func newDeviceOptimizer(c model.OptimizerConfig) (deviceOptimizer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Name {
	case "adam":
		return adamOnGPU{c}, nil
	case "sgd":
		return sgdOnGPU{c}, nil
	}
	return nil, fmt.Errorf("the native engine has no optimizer %q", c.Name)
}
