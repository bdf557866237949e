package model

import (
	"testing"
)

// BenchmarkTrainStep is one training step (forward, backward, Adam) at the
// default batch of 32 on the CPU graph backend.
func BenchmarkTrainStep(b *testing.B) {
	b.Run("full", func(b *testing.B) { benchmarkTrainStep(b) })
	b.Run("pruned", func(b *testing.B) { benchmarkTrainStep(b, WithPrunedProgram()) })
}

func benchmarkTrainStep(b *testing.B, benchOpts ...GraphOption) {
	cfg := DefaultConfig()
	backend, err := NewGraphBackend(cfg, benchOpts...)
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	set := syntheticSet(cfg.BatchSize*8, 1)
	idx := make([]int, cfg.BatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := range idx {
			idx[r] = (i*cfg.BatchSize + r) % set.Len()
		}
		if _, err := backend.Step(set, idx); err != nil {
			b.Fatal(err)
		}
	}
}
