//go:build cuda

package gpu

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"gorgonia.org/cu"

	"mnist/model"
)

// The driver-call counters of scripts/nullcuda, a CUDA driver and cuBLAS
// that do no GPU work, which scripts/host-overhead.sh puts in front of the
// real ones to measure the host's share of a training step on any machine.
// It keeps its counters in the file NULLCUDA_COUNTS names, as 64-bit
// integers in this order (nullcuda.c's enum).
const nullcudaCountsEnv = "NULLCUDA_COUNTS"

var nullcudaCounters = []string{
	"launches", "gemms", "graph-launches", "copies-up", "copies-down", "copies-dd",
	"memsets", "syncs", "allocs", "frees", "context-sets",
}

// perStepCounters are the counters BenchmarkEngineStepAt reports per step.
var perStepCounters = []string{"launches", "gemms", "graph-launches", "copies-up", "copies-down", "syncs"}

// driverCalls reads the counters; ok is false on a real driver (no
// NULLCUDA_COUNTS).
func driverCalls(tb testing.TB) (counts map[string]uint64, ok bool) {
	tb.Helper()
	path := os.Getenv(nullcudaCountsEnv)
	if path == "" {
		return nil, false
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read the nullcuda counters: %v", err)
	}
	if len(raw) != 8*len(nullcudaCounters) {
		tb.Fatalf("%s holds %d bytes, want %d: not nullcuda's counters", path, len(raw), 8*len(nullcudaCounters))
	}
	counts = map[string]uint64{}
	for i, name := range nullcudaCounters {
		counts[name] = binary.NativeEndian.Uint64(raw[8*i:])
	}
	return counts, true
}

// reportCallsPerStep adds each per-step counter's growth since before,
// divided by steps, to the benchmark's output.
func reportCallsPerStep(bm *testing.B, before map[string]uint64, steps int) {
	bm.Helper()
	after, ok := driverCalls(bm)
	if !ok || steps == 0 {
		return
	}
	for _, name := range perStepCounters {
		bm.ReportMetric(float64(after[name]-before[name])/float64(steps), name+"/op")
	}
}

// onNullcuda reports whether the CUDA driver is nullcuda, which names its
// one device so: the tests then run against it as on a GPU, but for those
// that need a real one.
func onNullcuda() bool {
	if cu.Init() != nil {
		return false
	}
	d, err := cu.GetDevice(0)
	if err != nil {
		return false
	}
	name, err := d.Name()
	return err == nil && strings.HasPrefix(name, "nullcuda")
}

// TestKernelsIndependentOfThreadOrder trains each engine through
// DeviceLoop (the captured and persistent steps, and the native kernels of
// the partial batch) twice, with nullcuda running a grid's blocks, and a
// block's threads between two barriers, first to last and then last to
// first (NULLCUDA_ORDER=reverse). Every float sum of mlp.cu runs in a fixed
// order in one thread, so the two runs must agree bit for bit: where a
// barrier is missing between threads that share data, one of the orders
// reads what has not been written yet, as a GPU would now and then. (On
// nullcuda every run also checks that a block's threads meet at the same
// __syncthreads.) Batches of 32, 200 and 280 rows give the persistent
// kernel's phase B one, two and four rows a block on nullcuda's 132 blocks,
// 280 an odd count of phase A's tiles (7 parts of 35 row tiles), so that
// half a block has none in the last round, and 1,100 two rounds of tiles
// and up to three rows a group, so that shared memory is refilled.
func TestKernelsIndependentOfThreadOrder(t *testing.T) {
	requireNativeGPU(t)
	if !onNullcuda() {
		t.Skip("the order of blocks and threads is nullcuda's to choose, not a GPU's")
	}
	if raceDetector {
		// It checks the kernels, not Go's goroutines, and takes four times
		// as long under the detector: scripts/test-cuda-cpu.sh runs it
		// without.
		t.Skip("run without -race (scripts/test-cuda-cpu.sh does)")
	}
	for _, batch := range []int{32, 200, 280, 1100} {
		cfg := nativeTestConfig(batch)
		cfg.Epochs = 1
		set := learnableSet(2*batch+batch/2, 3) // two full steps and a partial one
		if batch == 32 {
			set = learnableSet(1000, 3)
		}
		for _, name := range EngineNames() {
			t.Run(fmt.Sprintf("%s/batch%d", name, batch), func(t *testing.T) {
				train := func(order string) ([]model.EpochStats, model.State) {
					t.Setenv("NULLCUDA_ORDER", order)
					e := newTestEngine(t, testEngines()[name], cfg)
					return fitEngine(t, cfg, e, set), state(t, e)
				}
				hist, first := train("")
				histRev, reversed := train("reverse")
				if hist[0].Loss != histRev[0].Loss || hist[0].Accuracy != histRev[0].Accuracy {
					t.Errorf("training loss %v accuracy %v, last to first %v %v", hist[0].Loss, hist[0].Accuracy,
						histRev[0].Loss, histRev[0].Accuracy)
				}
				assertParamsEqual(t, reversed.Params, first.Params)
				assertOptimizerEqual(t, reversed.Optimizer, first.Optimizer)
			})
		}
	}
}
