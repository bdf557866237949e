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
	engines := make([]*graphEngine, len(variants))
	for i, v := range variants {
		engines[i] = newTestEngine(t, cfg, v.opts...).(*graphEngine)
		if err := engines[i].Load(TrainSet, set); err != nil {
			t.Fatal(err)
		}
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
		passes := make([]pass, len(engines))
		for i, e := range engines {
			if _, err := e.Step(idx); err != nil {
				t.Fatalf("%s step %d: %v", variants[i].name, step, err)
			}
			// The training graph still holds the step's values; only the
			// parameters have moved on.
			p, err := lastPass(e, len(idx))
			if err != nil {
				t.Fatalf("%s step %d: %v", variants[i].name, step, err)
			}
			passes[i] = p
		}
		for i := 1; i < len(passes); i++ {
			where := fmt.Sprintf("step %d, %s against %s", step, variants[i].name, variants[0].name)
			assertBitEqual(t, where+": log-probabilities", passes[i].logProbs, passes[0].logProbs)
			for p := range passes[i].grads {
				assertBitEqual(t, where+": gradient of "+ParamNames()[p], passes[i].grads[p], passes[0].grads[p])
			}
			assertSameParams(t, engines[i].params, engines[0].params)
		}
	}
}

// pass is what the training graph of a graph engine holds after a step.
type pass struct {
	logProbs []float64
	grads    [6][]float64
}

// lastPass copies the last step's log-probabilities (rows real rows) and
// gradients out of e's training graph.
func lastPass(e *graphEngine, rows int) (pass, error) {
	p := pass{logProbs: toFloat64(e.train.logProbs.Value())[:rows*Classes]}
	for i := range p.grads {
		g, err := e.train.grad(i)
		if err != nil {
			return pass{}, err
		}
		p.grads[i] = toFloat64(g)
	}
	return p, nil
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
	if _, err := NewGraphEngine(cfg, WithFusedOps()); err == nil {
		t.Fatal("a float64 engine with fused ops: no error")
	}
}
