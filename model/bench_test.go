package model

import (
	"context"
	"testing"

	"mnist/data"
)

// BenchmarkTrainStep is one training step (forward, backward, Adam) at the
// default batch of 32 on the CPU graph engine, over the real MNIST images:
// about 80% of their pixels are 0, and gonum's pure-Go matrix product skips
// zeros, so synthetic dense images would misstate where the time goes.
func BenchmarkTrainStep(b *testing.B) {
	dir, err := data.DefaultDir()
	if err != nil {
		b.Fatal(err)
	}
	set, _, err := data.Load(context.Background(), dir)
	if err != nil {
		b.Skipf("needs MNIST in %s (make data): %v", dir, err)
	}
	b.Run("full", func(b *testing.B) { benchmarkTrainStep(b, set) })
	b.Run("pruned", func(b *testing.B) { benchmarkTrainStep(b, set, WithPrunedProgram()) })
	b.Run("fused", func(b *testing.B) { benchmarkTrainStep(b, set, WithPrunedProgram(), WithFusedOps()) })
}

func benchmarkTrainStep(b *testing.B, set *data.Set, opts ...GraphOption) {
	cfg := DefaultConfig()
	e := newTestEngine(b, cfg, opts...)
	if err := e.Load(TrainSet, set); err != nil {
		b.Fatal(err)
	}
	idx := make([]int, cfg.BatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := range idx {
			idx[r] = (i*cfg.BatchSize + r) % set.Len()
		}
		if _, err := e.Step(idx); err != nil {
			b.Fatal(err)
		}
	}
}
