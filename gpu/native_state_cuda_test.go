//go:build cuda

package gpu

import (
	"fmt"
	"math"
	"testing"

	"mnist/model"
)

// TestEngineFinite: Finite is true for finite parameters and turns false
// when SetState puts a NaN or an infinity anywhere among them, the first
// and last value of the flat buffer included; putting the finite ones back
// makes it true again.
func TestEngineFinite(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testFinite)
}

func testFinite(t *testing.T, open opener) {
	e := newTestEngine(t, open, nativeTestConfig(8))
	good := state(t, e)
	assertFinite := func(want bool, what string) {
		t.Helper()
		got, err := e.Finite()
		if err != nil {
			t.Fatalf("Finite %s: %v", what, err)
		}
		if got != want {
			t.Errorf("Finite %s = %v, want %v", what, got, want)
		}
	}
	assertFinite(true, "at the start")
	last := len(model.ParamNames()) - 1
	for _, c := range []struct {
		tensor, at int // at < 0 counts from the end
		v          float32
	}{
		{0, 0, float32(math.NaN())},
		{0, -1, float32(math.Inf(1))},
		{3, 17, float32(math.Inf(-1))},
		{last, -1, float32(math.NaN())},
	} {
		bad, err := good.Params.Clone()
		if err != nil {
			t.Fatal(err)
		}
		xs := bad.Tensors[c.tensor].Data().([]float32)
		at := c.at
		if at < 0 {
			at += len(xs)
		}
		xs[at] = c.v
		what := fmt.Sprintf("with %s[%d] = %v", model.ParamNames()[c.tensor], at, c.v)
		if err := e.SetState(model.State{Params: bad, Optimizer: good.Optimizer}); err != nil {
			t.Fatalf("SetState %s: %v", what, err)
		}
		assertFinite(false, what)
		if err := e.SetState(good); err != nil {
			t.Fatal(err)
		}
		assertFinite(true, "after restoring the finite parameters")
	}
}

// TestEngineStateRoundTrip: with either optimizer, the State of a trained
// engine, handed to a fresh engine of another seed with SetState, comes
// back bit for bit; and the uninterrupted engine and the resumed one, given
// the same further steps, report the same results and end bit-identical, so
// a resumed run continues exactly like an uninterrupted one.
func TestEngineStateRoundTrip(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testStateRoundTrip)
}

func testStateRoundTrip(t *testing.T, open opener) {
	set := learnableSet(128, 8)
	for _, name := range model.OptimizerNames() {
		t.Run(name, func(t *testing.T) {
			cfg := nativeTestConfig(16)
			cfg.Optimizer.Name = name
			whole := newTestEngine(t, open, cfg)
			load(t, whole, model.TrainSet, set)
			steps(t, whole, set.Len(), 16, 0, 3)
			saved := state(t, whole)
			if saved.Optimizer.Step != 3 {
				t.Fatalf("optimizer step %d after 3 steps", saved.Optimizer.Step)
			}

			// SetState then State gives the same bits, into a fresh engine
			// and again into the same one.
			other := cfg
			other.Seed = cfg.Seed + 1 // different initial weights, all to be replaced
			resumed := newTestEngine(t, open, other)
			load(t, resumed, model.TrainSet, set)
			for round := 1; round <= 2; round++ {
				if err := resumed.SetState(saved); err != nil {
					t.Fatal(err)
				}
				copied := state(t, resumed)
				assertParamsEqual(t, copied.Params, saved.Params)
				assertOptimizerEqual(t, copied.Optimizer, saved.Optimizer)
			}

			// The same steps 4 to 8 on both.
			r1 := steps(t, whole, set.Len(), 16, 3, 5)
			r2 := steps(t, resumed, set.Len(), 16, 3, 5)
			for i := range r1 {
				if r1[i] != r2[i] {
					t.Errorf("step %d: %+v uninterrupted, %+v resumed", i+4, r1[i], r2[i])
				}
			}
			end1, end2 := state(t, whole), state(t, resumed)
			assertParamsEqual(t, end2.Params, end1.Params)
			assertOptimizerEqual(t, end2.Optimizer, end1.Optimizer)
			if end1.Optimizer.Step != 8 {
				t.Errorf("optimizer step %d after 8 steps", end1.Optimizer.Step)
			}
		})
	}
}
