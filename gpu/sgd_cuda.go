//go:build cuda

package gpu

import (
	"gorgonia.org/cu"

	"mnist/model"
)

// sgdOnGPU is Keras's SGD with momentum on the device (mlp.cu's
// sgd_momentum).
type sgdOnGPU struct{ c model.OptimizerConfig }

func (sgdOnGPU) name() string { return "sgd" }
func (sgdOnGPU) slots() int   { return 1 } // velocity

func (s sgdOnGPU) update(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, _ int64) error {
	return l.launch(kSGDMomentum, n,
		argPtr(params), argPtr(grads), argPtr(slots[0]), argInt(n),
		argFloat(float32(s.c.Momentum)), argFloat(float32(s.c.LearningRate)))
}

// updateAt: SGD's arguments do not change from step to step.
func (s sgdOnGPU) updateAt(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, _ cu.DevicePtr, _ bool) error {
	return s.update(l, params, grads, slots, n, 0)
}

// prepare and release: SGD keeps nothing but its velocity.
func (sgdOnGPU) prepare(lane, *deviceMemory) error { return nil }
func (sgdOnGPU) release(*deviceMemory) error       { return nil }

// fusedArgs: fused_update's SGD takes the rate and the momentum, and no
// table of step sizes.
func (s sgdOnGPU) fusedArgs() []kernelArg {
	return []kernelArg{argInt(fusedSGD), argDouble(0), argDouble(0), argDouble(s.c.LearningRate),
		argFloat(0), argFloat(float32(s.c.Momentum)), argPtr(0), argInt(0)}
}
