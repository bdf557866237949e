//go:build cuda

package gpu

import (
	"gorgonia.org/cu"

	"mnist/model"
)

// adamOnGPU is Keras's Adam on the device (mlp.cu's adam), with the
// bias-corrected rate computed on the host in float64, as model's Adam does,
// or, in a captured or persistent step, looked up in rates, the table of
// the first nrates updates' rates that prepare has the device work out once.
// Only those steps read the table, so only their engines prepare it.
type adamOnGPU struct {
	c      model.OptimizerConfig
	rates  cu.DevicePtr
	nrates int // adamRateSteps once prepared, else 0; tests shorten it
}

// adamRateSteps is the length of the table of rates: 256 KiB, almost 35
// epochs at batch 32. An update past it works its rate out (mlp.cu's
// adam_rate_at), with the same result.
const adamRateSteps = 1 << 16

func (*adamOnGPU) name() string { return "adam" }
func (*adamOnGPU) slots() int   { return 2 } // m, v

func (a *adamOnGPU) prepare(l lane, mem *deviceMemory) error {
	var err error
	if a.rates, err = mem.alloc("Adam's step sizes", adamRateSteps*4); err != nil {
		return err
	}
	c := a.c
	if err := l.launch(kAdamRates, adamRateSteps,
		argPtr(a.rates), argInt(adamRateSteps), argDouble(c.Beta1), argDouble(c.Beta2), argDouble(c.LearningRate)); err != nil {
		return err
	}
	// Captured steps read the table from a stream that does not wait for
	// this one: it is finished before the engine takes any step.
	if err := check("filling Adam's step sizes", cu.Synchronize()); err != nil {
		return err
	}
	a.nrates = adamRateSteps
	return nil
}

// release frees the table; later updates work their rates out.
func (a *adamOnGPU) release(mem *deviceMemory) error {
	if a.rates == 0 {
		return nil
	}
	p := a.rates
	a.rates, a.nrates = 0, 0
	return mem.free(p)
}

func (a *adamOnGPU) update(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, t int64) error {
	c := a.c
	return l.launch(kAdam, n,
		argPtr(params), argPtr(grads), argPtr(slots[0]), argPtr(slots[1]), argInt(n),
		argFloat(float32(c.Beta1)), argFloat(float32(1-c.Beta1)),
		argFloat(float32(c.Beta2)), argFloat(float32(1-c.Beta2)),
		argFloat(float32(model.AdamRate(c, t))), argFloat(float32(c.Epsilon)))
}

// updateAt is mlp.cu's adam_at: the step size from the device's count.
func (a *adamOnGPU) updateAt(l lane, params, grads cu.DevicePtr, slots []cu.DevicePtr, n int, steps cu.DevicePtr, counted bool) error {
	c := a.c
	args := []kernelArg{argPtr(params), argPtr(grads), argPtr(slots[0]), argPtr(slots[1]), argInt(n),
		argDouble(c.Beta1), argDouble(c.Beta2), argDouble(c.LearningRate), argFloat(float32(c.Epsilon)), argPtr(steps),
		argInt(boolArg(counted))}
	return l.launch(kAdamAt, n, append(args, a.tableArgs()...)...)
}

// fusedArgs: fused_update's and train_steps's Adam look the step size up
// in the table as adam_at does.
func (a *adamOnGPU) fusedArgs() []kernelArg {
	c := a.c
	return append([]kernelArg{argInt(fusedAdam), argDouble(c.Beta1), argDouble(c.Beta2), argDouble(c.LearningRate),
		argFloat(float32(c.Epsilon)), argFloat(0)}, a.tableArgs()...)
}

// tableArgs are adam_rate_at's table and its length, the last arguments
// of the kernels that read it.
func (a *adamOnGPU) tableArgs() []kernelArg {
	return []kernelArg{argPtr(a.rates), argInt(a.nrates)}
}
