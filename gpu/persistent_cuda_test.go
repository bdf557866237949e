//go:build cuda

package gpu

import (
	"strings"
	"testing"

	"gorgonia.org/cu"

	"mnist/data"
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

// TestKernelConstantsMatchGo checks the constants the Go side shares with
// mlp.cu's persistent and fused kernels.
func TestKernelConstantsMatchGo(t *testing.T) {
	checkKernelDefines(t, []kernelDefine{
		{"PERSIST_THREADS", persistThreads},
		{"ROW_TILE", persistRowTile},
		{"MAX_ROW_GROUPS", maxRowGroups},
		{"BAR_WORDS", barWords},
		{"BAR_GEN", barGen},
		{"PHASE_FIRST", phaseFirst},
		{"PHASE_ROWS", phaseRows},
		{"PHASE_UPDATE", phaseUpdate},
		{"FUSED_ADAM", fusedAdam},
		{"FUSED_SGD", fusedSGD},
	})
}

func TestPersistRowGroups(t *testing.T) {
	for _, c := range []struct{ rows, blocks, want int }{
		{32, 132, 1}, {132, 132, 1}, {133, 132, 2}, {256, 132, 2}, {264, 132, 2}, {265, 132, 4}, {1024, 132, 4},
		{8, 4, 2}, {13, 4, 4},
	} {
		if got := persistRowGroups(c.rows, c.blocks); got != c.want {
			t.Errorf("persistRowGroups(%d, %d) = %d, want %d", c.rows, c.blocks, got, c.want)
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

// openPersistentWith opens the persistent engine, closed when the test
// ends, with set as its training set in order, for tests that launch its
// steps themselves.
func openPersistentWith(tb testing.TB, cfg model.Config, set *data.Set) *nativeEngine {
	tb.Helper()
	e := newTestEngine(tb, testEngines()[EnginePersistent], cfg)
	load(tb, e, model.TrainSet, set)
	if err := e.(model.DeviceLoop).SetOrder(identity(set.Len())); err != nil {
		tb.Fatal(err)
	}
	return e.(*nativeEngine)
}

// TestPersistentBarrierCounts runs launches of barriers alone on a GPU and
// reads grid_sync's words back: the arrival count must be 0 after every
// barrier and the generation must have moved on once per barrier, three a
// step. (nullcuda has a barrier of its own that leaves the words alone.)
func TestPersistentBarrierCounts(t *testing.T) {
	requireNativeGPU(t)
	if onNullcuda() {
		t.Skip("nullcuda's grid_sync is its own, not the kernel's")
	}
	b := openPersistentWith(t, nativeTestConfig(32), learnableSet(512, 1))
	words := make([]uint32, barWords)
	passed := 0
	for launch, steps := range []int{1, 16, 5} {
		err := b.do(func() error {
			if err := b.launchSteps(0, steps, 0, 0); err != nil {
				return err
			}
			return download("grid barrier", words, b.persist.bar)
		})
		if err != nil {
			t.Fatal(err)
		}
		passed += 3 * steps
		if words[0] != 0 || words[barGen] != uint32(passed) {
			t.Errorf("after launch %d: count %d, generation %d; want 0 and %d", launch+1, words[0], words[barGen], passed)
		}
	}
}

// TestPersistentLaunchBounds: a launch of no steps, or of more than a
// launch holds, is refused before the GPU sees it.
func TestPersistentLaunchBounds(t *testing.T) {
	requireNativeGPU(t)
	b := openPersistentWith(t, nativeTestConfig(32), learnableSet(512, 1))
	for _, count := range []int{0, b.persist.steps + 1} {
		err := b.do(func() error { return b.launchSteps(0, count, 0, allPhases) })
		if err == nil || !strings.Contains(err.Error(), "steps in one launch") {
			t.Errorf("a launch of %d steps (room for %d): %v, want a refusal", count, b.persist.steps, err)
		}
	}
}

// BenchmarkPersistentParts shows where a persistent training step's time
// goes (batch 32, steps many to a launch as the trainer queues them): the
// first row runs only a step's three grid barriers, each next row adds a
// phase (the first layer's partial sums, then the rows, then the
// gradients and the update); the last is a whole step, as
// BenchmarkEngineStepAt's persistent one without its wrap-round. A last
// row runs the whole step with SGD instead of Adam: the difference is what
// Adam's second slot and its update's arithmetic cost. Each time is per
// step, with the device waited for at the end.
func BenchmarkPersistentParts(bm *testing.B) {
	requireNativeGPU(bm)
	set := learnableSet(8192, 1) // 256 steps of 32: one launch
	for _, c := range []struct {
		name      string
		phases    int
		optimizer string
	}{
		{"barriers", 0, "adam"},
		{"barriers+first", phaseFirst, "adam"},
		{"barriers+first+rows", phaseFirst | phaseRows, "adam"},
		{"barriers+first+rows+update", allPhases, "adam"},
		{"barriers+first+rows+update/sgd", allPhases, "sgd"},
	} {
		bm.Run(c.name, func(bm *testing.B) {
			cfg := nativeTestConfig(32)
			cfg.Optimizer.Name = c.optimizer
			b := openPersistentWith(bm, cfg, set)
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
