// Package enginetest is the conformance test every engine runs against the
// plain-Go reference: the graph engine in model's tests, the CUDA engines in
// gpu's.
package enginetest

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"mnist/model"
	"mnist/model/modeltest"
	"mnist/model/reference"
)

// NewEngine builds the engine under test for cfg.
type NewEngine func(cfg model.Config) (model.Engine, error)

// Conformance checks an engine against the plain-Go float64 reference, on
// one fixed batch with a padded row, through the Engine verbs alone: the
// log-probabilities (Forward), the loss and hits (Step), every gradient, and
// the weights after two steps of each optimizer. Every engine runs it, as
// llm.c's test programs check both of its implementations against one
// state. tol is the largest relative error allowed: rounding for float64,
// 1e-4 for float32.
//
// Gradients are read without a test-only verb: with β1 = 0, Adam's first
// moment after one step from zero is (1-0)·g = g exactly.
func Conformance(t *testing.T, dtype tensor.Dtype, tol float64, newEngine NewEngine) {
	set := modeltest.LearnableSet(8, 3)
	idx := []int{0, 1, 2, 3, 4, 5, 6} // 7 of a batch of 8: one padded row
	x, labels := modeltest.ReferenceBatch(set, idx)
	base := model.DefaultConfig()
	base.Dtype, base.BatchSize, base.Seed = dtype, 8, 9

	open := func(t *testing.T, cfg model.Config) (model.Engine, reference.Params) {
		t.Helper()
		e, err := newEngine(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		for _, id := range []model.DataID{model.TrainSet, model.TestSet} {
			if err := e.Load(id, set); err != nil {
				t.Fatal(err)
			}
		}
		st, err := e.State()
		if err != nil {
			t.Fatal(err)
		}
		return e, reference.Params(st.Params.Float64s())
	}

	t.Run("forward, loss, gradients", func(t *testing.T) {
		cfg := base
		cfg.Optimizer.Beta1 = 0
		e, w := open(t, cfg)
		want := reference.ForwardBackward(w, x, labels)
		lp := make([]float64, len(idx)*model.Classes)
		if err := e.Forward(model.TestSet, idx, lp); err != nil {
			t.Fatal(err)
		}
		if err := modeltest.MaxRelErr(lp, want.LogProbs, 1); err > tol {
			t.Errorf("log-probabilities differ, rel err %.2g", err)
		}
		res, err := e.Step(idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := math.Abs(res.Loss-want.Loss) / want.Loss; err > tol {
			t.Errorf("loss %v, reference %v (rel err %.2g)", res.Loss, want.Loss, err)
		}
		if hits := Hits(want.LogProbs, labels); res.Hits != hits {
			t.Errorf("%d hits, reference %d", res.Hits, hits)
		}
		st, err := e.State()
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range st.Optimizer.Slots[0] {
			if err := modeltest.MaxRelErr(g, want.Grads[i], maxAbs(want.Grads[i])); err > tol {
				t.Errorf("%s gradient differs, rel err %.2g", model.ParamNames()[i], err)
			}
		}
	})

	for _, name := range model.OptimizerNames() {
		t.Run(name+" steps", func(t *testing.T) {
			cfg := base
			cfg.Optimizer.Name = name
			var update func(w, g reference.Params)
			switch name {
			case "adam":
				o := cfg.Optimizer
				update = reference.NewAdam(o.LearningRate, o.Beta1, o.Beta2, o.Epsilon).Update
			case "sgd":
				cfg.Optimizer.LearningRate = 0.05
				update = reference.NewSGD(cfg.Optimizer.LearningRate, cfg.Optimizer.Momentum).Update
			default:
				t.Fatalf("no reference for optimizer %q", name)
			}
			e, w := open(t, cfg)
			for step := 0; step < 2; step++ {
				if _, err := e.Step(idx); err != nil {
					t.Fatal(err)
				}
				update(w, reference.ForwardBackward(w, x, labels).Grads)
			}
			st, err := e.State()
			if err != nil {
				t.Fatal(err)
			}
			for i, got := range st.Params.Float64s() {
				if err := modeltest.MaxRelErr(got, w[i], 1e-2); err > tol {
					t.Errorf("%s after 2 %s steps differs, rel err %.2g", model.ParamNames()[i], name, err)
				}
			}
		})
	}
}

// Hits counts the rows whose first largest log-probability is the label.
func Hits(logProbs []float64, labels []int) int {
	hits := 0
	for r, l := range labels {
		row := logProbs[r*model.Classes : (r+1)*model.Classes]
		best := 0
		for c := range row {
			if row[c] > row[best] {
				best = c
			}
		}
		if best == l {
			hits++
		}
	}
	return hits
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, math.Abs(x))
	}
	return m
}
