//go:build cuda

package gpu

import (
	"testing"

	"gorgonia.org/cu"

	"mnist/model"
)

// stepParts are the parts of a native training step through DeviceLoop, in
// the order StepAt queues them.
var stepParts = []struct {
	name string
	run  func(b *nativeEngine, ds *deviceSet, at cu.DevicePtr, rows int) error
}{
	{"forward", func(b *nativeEngine, ds *deviceSet, at cu.DevicePtr, rows int) error {
		return b.forwardAt(b.legacy, ds, batchAt{idx: at}, rows)
	}},
	{"backward", func(b *nativeEngine, _ *deviceSet, _ cu.DevicePtr, rows int) error { return b.backward(b.legacy, rows) }},
	{"update", func(b *nativeEngine, _ *deviceSet, _ cu.DevicePtr, _ int) error { return b.update(b.legacy) }},
	{"accumulate", func(b *nativeEngine, _ *deviceSet, _ cu.DevicePtr, rows int) error {
		return b.accumulate(b.legacy, rows)
	}},
}

// BenchmarkStepParts shows where a native training step's time goes (batch
// 32, through DeviceLoop as the trainer drives it): each sub-benchmark
// queues the first k parts of a step (forward; then backward, the
// optimizer's update, the running totals), and waits for the device once
// at the end, so each time is that prefix's throughput, host or GPU,
// whichever is slower. The difference between two rows is what the next
// part adds; the last row is a whole step, as BenchmarkEngineStepAt's
// native one. The gorgonia engine launches the same kernels and products
// in the same order.
func BenchmarkStepParts(bm *testing.B) {
	requireNativeGPU(bm)
	set := learnableSet(1024, 1)
	cfg := nativeTestConfig(32)
	for k := 1; k <= len(stepParts); k++ {
		name := stepParts[0].name
		for _, p := range stepParts[1:k] {
			name += "+" + p.name
		}
		bm.Run(name, func(bm *testing.B) {
			e := newTestEngine(bm, openNative, cfg)
			load(bm, e, model.TrainSet, set)
			if err := e.(model.DeviceLoop).SetOrder(identity(set.Len())); err != nil {
				bm.Fatal(err)
			}
			b := e.(*nativeEngine)
			steps := set.Len() / cfg.BatchSize
			before, _ := driverCalls(bm)
			bm.ResetTimer()
			err := b.do(func() error {
				ds := b.sets[model.TrainSet]
				for i := 0; i < bm.N; i++ {
					lo := i % steps * cfg.BatchSize
					at, err := b.loop.batchAt(lo, lo+cfg.BatchSize, cfg.BatchSize)
					if err != nil {
						return err
					}
					for _, p := range stepParts[:k] {
						if err := p.run(b, ds, at, cfg.BatchSize); err != nil {
							return err
						}
					}
				}
				return check("waiting for the device", cu.Synchronize()) // timed too
			})
			bm.StopTimer()
			if err != nil {
				bm.Fatal(err)
			}
			reportCallsPerStep(bm, before, bm.N)
		})
	}
}
