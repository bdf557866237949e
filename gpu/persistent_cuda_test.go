//go:build cuda

package gpu

import (
	"testing"

	"gorgonia.org/cu"

	"mnist/model"
)

func TestPersistParts(t *testing.T) {
	for _, c := range []struct {
		rows, blocks, want int
	}{
		{32, 132, 56},  // H100, default batch: 4 row tiles, 264 halves
		{256, 132, 8},  // 32 row tiles
		{1024, 132, 2}, // 128 row tiles
		{4096, 132, 2}, // more tiles than halves: still at least 2 parts
		{8, 4, 8},      // one row tile on 8 halves
		{32, 1, 2},
		{1, 1000, 56}, // capped
	} {
		got := persistParts(c.rows, c.blocks)
		if got != c.want {
			t.Errorf("persistParts(%d, %d) = %d, want %d", c.rows, c.blocks, got, c.want)
		}
		if model.Inputs%got != 0 || model.Inputs/got > model.Inputs/2 {
			t.Errorf("persistParts(%d, %d) = %d: not a divisor of %d into parts of at most %d",
				c.rows, c.blocks, got, model.Inputs, model.Inputs/2)
		}
	}
}

func TestPersistLaunchSteps(t *testing.T) {
	for _, c := range []struct{ rows, want int }{
		{1, 256}, {32, 256}, {33, 248}, {256, 32}, {1024, 8}, {8192, 1}, {65536, 1},
	} {
		if got := persistLaunchSteps(c.rows); got != c.want {
			t.Errorf("persistLaunchSteps(%d) = %d, want %d", c.rows, got, c.want)
		}
	}
}

// BenchmarkPersistentParts shows where a persistent training step's time
// goes (batch 32, steps many to a launch as the trainer queues them): the
// first row runs only a step's three grid barriers, each next row adds a
// phase (the first layer's partial sums, then the rows, then the
// gradients and the update); the last is a whole step, as
// BenchmarkEngineStepAt's persistent one without its wrap-round. Each time
// is per step, with the device waited for at the end.
func BenchmarkPersistentParts(bm *testing.B) {
	requireNativeGPU(bm)
	set := learnableSet(8192, 1) // 256 steps of 32: one launch
	cfg := nativeTestConfig(32)
	for _, c := range []struct {
		name   string
		phases int
	}{
		{"barriers", 0},
		{"barriers+first", phaseFirst},
		{"barriers+first+rows", phaseFirst | phaseRows},
		{"barriers+first+rows+update", allPhases},
	} {
		bm.Run(c.name, func(bm *testing.B) {
			e := newTestEngine(bm, testEngines()[EnginePersistent], cfg)
			load(bm, e, model.TrainSet, set)
			if err := e.(model.DeviceLoop).SetOrder(identity(set.Len())); err != nil {
				bm.Fatal(err)
			}
			b := e.(*nativeEngine)
			steps := set.Len() / cfg.BatchSize
			bm.ResetTimer()
			err := b.do(func() error {
				for i := 0; i < bm.N; i += steps {
					if err := b.launchSteps(0, min(steps, bm.N-i), int64(i), c.phases); err != nil {
						return err
					}
				}
				return check("waiting for the device", cu.Synchronize()) // timed too
			})
			bm.StopTimer()
			if err != nil {
				bm.Fatal(err)
			}
		})
	}
}
