package model

import (
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"
)

// TestFusedGraphMatchesStockGraph trains the same network side by side as
// Gorgonia's stock ops (the full program, gradients read through Read ops,
// as the CUDA device runs it; and the pruned program) and as the fused ops
// the CPU device runs. Log-probabilities, every gradient and the weights
// after each Adam step must agree bit for bit, on full and padded batches.
func TestFusedGraphMatchesStockGraph(t *testing.T) {
	set := syntheticSet(200, 3)
	for i, p := range set.Images { // mostly zeros, like MNIST
		if p < 40 {
			set.Images[i] = 0
		}
	}
	cfg := DefaultConfig()
	variants := []struct {
		name string
		opts []GraphOption
	}{
		{"stock", nil},
		{"stock-pruned", []GraphOption{WithPrunedProgram()}},
		{"fused-pruned", []GraphOption{WithPrunedProgram(), WithFusedOps()}},
	}
	backends := make([]Backend, len(variants))
	for i, v := range variants {
		b, err := NewGraphBackend(cfg, v.opts...)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		defer b.Close()
		backends[i] = b
	}
	for step := 0; step < 6; step++ {
		n := cfg.BatchSize
		if step%3 == 2 {
			n = 5 // a padded batch
		}
		idx := make([]int, n)
		for r := range idx {
			idx[r] = (step*cfg.BatchSize + r*7) % set.Len()
		}
		passes := make([]Pass, len(backends))
		for i, b := range backends {
			p, err := b.Probe(set, idx)
			if err != nil {
				t.Fatalf("%s step %d: %v", variants[i].name, step, err)
			}
			passes[i] = p
			if _, err := b.Step(set, idx); err != nil {
				t.Fatalf("%s step %d: %v", variants[i].name, step, err)
			}
		}
		for i := 1; i < len(passes); i++ {
			where := fmt.Sprintf("step %d, %s against %s", step, variants[i].name, variants[0].name)
			assertBitEqual(t, where+": log-probabilities", passes[i].LogProbs, passes[0].LogProbs)
			for p := range passes[i].Grads {
				assertBitEqual(t, where+": gradient of "+ParamNames()[p], passes[i].Grads[p], passes[0].Grads[p])
			}
			got, _ := backends[i].Params()
			want, _ := backends[0].Params()
			assertSameParams(t, got, want)
		}
	}
}

func assertBitEqual(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestFusedOpsNeedFloat32(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dtype = tensor.Float64
	if _, err := NewGraphBackend(cfg, WithFusedOps()); err == nil {
		t.Fatal("a float64 backend with fused ops: no error")
	}
}
