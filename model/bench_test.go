package model

import (
	"context"
	"fmt"
	"testing"

	"mnist/data"
)

// BenchmarkTrainStep is one training step (forward, backward, Adam), at the
// default batch of 32 unless named, on the CPU graph engine, over the real MNIST images:
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
	b.Run("full", func(b *testing.B) { benchmarkTrainStep(b, set, 32) })
	b.Run("pruned", func(b *testing.B) { benchmarkTrainStep(b, set, 32, WithPrunedProgram()) })
	b.Run("fused", func(b *testing.B) { benchmarkTrainStep(b, set, 32, WithPrunedProgram(), WithFusedOps()) })
	// The CPU build at the batch sizes of make bench's sweep: at 256 and
	// 2048 the hidden layers' operands are dense and the products dominate.
	for _, batch := range []int{256, 2048} {
		b.Run(fmt.Sprintf("fused-batch=%d", batch), func(b *testing.B) {
			benchmarkTrainStep(b, set, batch, WithPrunedProgram(), WithFusedOps())
		})
	}
}

func benchmarkTrainStep(b *testing.B, set *data.Set, batch int, opts ...GraphOption) {
	cfg := DefaultConfig()
	cfg.BatchSize = batch
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
