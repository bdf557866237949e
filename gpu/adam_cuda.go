//go:build cuda

package gpu

import (
	"gorgonia.org/cu"

	"mnist/model"
)

// adamOnGPU is Keras's Adam on the device (mlp.cu's adam), with the
// bias-corrected rate computed on the host in float64, as model's Adam does.
type adamOnGPU struct{ c model.OptimizerConfig }

func (adamOnGPU) name() string { return "adam" }
func (adamOnGPU) slots() int   { return 2 } // m, v

func (a adamOnGPU) update(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, t int64) error {
	c := a.c
	return l.launch(kAdam, n,
		argPtr(params), argPtr(grads), argPtr(slots[0]), argPtr(slots[1]), argInt(n),
		argFloat(float32(c.Beta1)), argFloat(float32(1-c.Beta1)),
		argFloat(float32(c.Beta2)), argFloat(float32(1-c.Beta2)),
		argFloat(float32(model.AdamRate(c, t))), argFloat(float32(c.Epsilon)))
}

// updateAt is mlp.cu's adam_at: the step size from the device's count.
func (a adamOnGPU) updateAt(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, steps cu.DevicePtr, counted bool) error {
	c := a.c
	return l.launch(kAdamAt, n,
		argPtr(params), argPtr(grads), argPtr(slots[0]), argPtr(slots[1]), argInt(n),
		argDouble(c.Beta1), argDouble(c.Beta2), argDouble(c.LearningRate), argFloat(float32(c.Epsilon)), argPtr(steps),
		argInt(boolArg(counted)))
}

// fusedArgs: fused_update's Adam reads the update count as adam_at does.
func (a adamOnGPU) fusedArgs() []kernelArg {
	c := a.c
	return []kernelArg{argInt(fusedAdam), argDouble(c.Beta1), argDouble(c.Beta2), argDouble(c.LearningRate),
		argFloat(float32(c.Epsilon)), argFloat(0)}
}
