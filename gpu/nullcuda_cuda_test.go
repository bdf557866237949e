//go:build cuda

package gpu

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"gorgonia.org/cu"
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
