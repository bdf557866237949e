//go:build cuda

package gpu

import (
	"fmt"
	"math"
	"testing"

	"mnist/model"
	"mnist/model/reference"
)

// referenceSGD is Keras's SGD with momentum in float64, the rule of
// model/sgd.go and mlp.cu's sgd_momentum:
//
//	v ← μ·v - lr·g
//	w ← w + v
type referenceSGD struct {
	lr, mu float64
	v      reference.Params
}

func (s *referenceSGD) update(w, g reference.Params) {
	for i := range w {
		for j := range w[i] {
			s.v[i][j] = s.mu*s.v[i][j] - s.lr*g[i][j]
			w[i][j] += s.v[i][j]
		}
	}
}

// TestNativeSGDMatchesReference: two SGD steps (a partial batch, then a
// full one) leave parameters and velocities that match the float64
// reference, both fed the GPU's own gradients (the kernel alone) and all in
// float64 (end to end). The learning rate is raised to 0.1 so that the
// steps move the weights by far more than the tolerance.
func TestNativeSGDMatchesReference(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(8)
	cfg.Optimizer.Name = "sgd"
	cfg.Optimizer.LearningRate = 0.1
	set := learnableSet(8, 4)
	e := newTestNative(t, cfg)
	prober := newTestNative(t, probeConfig(cfg))
	load(t, e, model.TrainSet, set)
	load(t, prober, model.TrainSet, set)
	initial := state(t, e).Params

	newSGD := func() *referenceSGD {
		return &referenceSGD{lr: cfg.Optimizer.LearningRate, mu: cfg.Optimizer.Momentum, v: reference.Zero()}
	}
	w, sgdW := reference.Params(initial.Float64s()), newSGD()     // all float64
	own, sgdOwn := reference.Params(initial.Float64s()), newSGD() // fed the GPU's gradients
	for step, idx := range twoSteps() {
		x, labels := referenceBatch(set, idx)
		pass := reference.ForwardBackward(w, x, labels)
		p := probeAt(t, prober, state(t, e).Params, idx)
		res, err := e.Step(idx)
		if err != nil {
			t.Fatal(err)
		}
		if e := math.Abs(res.Loss-pass.Loss) / pass.Loss; !(e <= nativeTol) {
			t.Errorf("step %d: loss %v, reference %v (rel err %.2g)", step+1, res.Loss, pass.Loss, e)
		}
		sgdW.update(w, pass.Grads)
		sgdOwn.update(own, p.Grads)
	}
	after := state(t, e)
	if after.Optimizer.Name != "sgd" || after.Optimizer.Step != 2 || len(after.Optimizer.Slots) != 1 {
		t.Fatalf("after two SGD steps the optimizer state is %s at step %d with %d slots, want sgd at 2 with 1",
			after.Optimizer.Name, after.Optimizer.Step, len(after.Optimizer.Slots))
	}
	got, velocity := after.Params.Float64s(), after.Optimizer.Slots[0]
	start := initial.Float64s()
	for i := range w {
		name := model.ParamNames()[i]
		for _, c := range []struct {
			what string
			w, v reference.Params
		}{{"fed the GPU's gradients", own, sgdOwn.v}, {"all float64", w, sgdW.v}} {
			ew := maxRelErr(got[i], c.w[i], 1e-2)
			// Velocities relative to the tensor's largest: tiny ones are
			// all rounding.
			ev := maxRelErr(velocity[i], c.v[i], maxAbs(c.v[i]))
			t.Logf("%s after 2 SGD steps, reference %s: weights rel err %.2g, velocity rel err %.2g", name, c.what, ew, ev)
			if !(ew <= nativeTol) || !(ev <= nativeTol) {
				t.Errorf("%s after 2 SGD steps differs from the reference %s: weights rel err %.2g, velocity rel err %.2g", name, c.what, ew, ev)
			}
		}
		if moved := maxRelErr(w[i], start[i], 1e-2); !(moved > 100*nativeTol) {
			t.Errorf("%s: two reference steps moved it by only %.2g (relative); the test checks nothing", name, moved)
		}
	}
}

// TestNativeFinite: Finite is true for finite parameters and turns false
// when SetState puts a NaN or an infinity anywhere among them, the first
// and last value of the flat buffer included; putting the finite ones back
// makes it true again.
func TestNativeFinite(t *testing.T) {
	requireNativeGPU(t)
	e := newTestNative(t, nativeTestConfig(8))
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

// TestNativeStateRoundTrip: with either optimizer, the State of a trained
// engine, handed to a fresh engine of another seed with SetState, comes
// back bit for bit; and the uninterrupted engine and the resumed one, given
// the same further steps, report the same results and end bit-identical, so
// a resumed run continues exactly like an uninterrupted one.
func TestNativeStateRoundTrip(t *testing.T) {
	requireNativeGPU(t)
	set := learnableSet(128, 8)
	for _, name := range model.OptimizerNames() {
		t.Run(name, func(t *testing.T) {
			cfg := nativeTestConfig(16)
			cfg.Optimizer.Name = name
			whole := newTestNative(t, cfg)
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
			resumed := newTestNative(t, other)
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
