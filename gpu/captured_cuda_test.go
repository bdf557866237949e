//go:build cuda

package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"mnist/data"
	"mnist/model"
	"mnist/model/reference"
)

// capturedEngines are the engines whose full training steps run their own
// way, captured into a CUDA graph and replayed (the Gorgonia engine's a
// captured run of its program), or many to a launch (persistent): only
// through DeviceLoop's StepAt, which the conformance test (Step, Forward)
// does not reach.
func capturedEngines() []string {
	return []string{EngineGorgonia, EngineCUDAGraph, EngineFused, EnginePersistent}
}

// TestCapturedStepMatchesReference checks one captured step against the
// float64 reference on a fixed batch: the loss and hits added to the
// running totals, and every gradient (read as Adam's first moment, which
// with β1 = 0 is the gradient itself), within 1e-4. Batches of 8, of 13
// (which does not fill the persistent kernel's tiles of 8 rows), and of
// 200 and 300, where its blocks take 2 and 4 rows at once on a GPU of 132
// SMs (nullcuda's, an H100's).
func TestCapturedStepMatchesReference(t *testing.T) {
	requireNativeGPU(t)
	set := randomSet(320, 5)
	order := rand.New(rand.NewPCG(5, 6)).Perm(set.Len())
	for _, name := range capturedEngines() {
		for _, batch := range []int{8, 13, 200, 300} {
			t.Run(fmt.Sprintf("%s/batch=%d", name, batch), func(t *testing.T) {
				testCapturedStep(t, name, set, order, batch)
			})
		}
	}
}

func testCapturedStep(t *testing.T, name string, set *data.Set, order []int, batch int) {
	cfg := nativeTestConfig(batch)
	cfg.Optimizer.Beta1 = 0
	e := newTestEngine(t, testEngines()[name], cfg)
	load(t, e, model.TrainSet, set)
	w := reference.Params(state(t, e).Params.Float64s())
	x, labels := referenceBatch(set, order[:batch])
	want := reference.ForwardBackward(w, x, labels)

	dl := e.(model.DeviceLoop)
	if err := dl.SetOrder(order); err != nil {
		t.Fatal(err)
	}
	if err := dl.StepAt(0, batch); err != nil {
		t.Fatal(err)
	}
	if g, ok := e.(*graphEngine); ok && (g.run.capture == nil || g.run.capture.graph == nil) {
		t.Error("the gorgonia engine's step was not captured")
	}
	lossSum, hits, err := dl.Totals()
	if err != nil {
		t.Fatal(err)
	}
	if loss := lossSum / float64(batch); math.Abs(loss-want.Loss)/want.Loss > nativeTol {
		t.Errorf("loss %v, reference %v", loss, want.Loss)
	}
	if h := referenceHits(want.LogProbs, labels); hits != h {
		t.Errorf("%d hits, reference %d", hits, h)
	}
	for i, g := range state(t, e).Optimizer.Slots[0] {
		if err := maxRelErr(g, want.Grads[i], maxAbs(want.Grads[i])); err > nativeTol {
			t.Errorf("%s gradient differs from the reference, rel err %.2g", model.ParamNames()[i], err)
		}
	}
}

// TestCapturedStepsMatchReferenceUpdates runs three steps of each
// optimizer and checks the parameters against the reference's: the second
// follows the first in the order (a replay of the graph the first
// captured, or the same launch), the third goes back to the start (the
// device's cursor set again, or a new launch).
func TestCapturedStepsMatchReferenceUpdates(t *testing.T) {
	requireNativeGPU(t)
	set := learnableSet(16, 4)
	order := identity(16)
	slices.Reverse(order)
	for _, name := range capturedEngines() {
		for _, opt := range model.OptimizerNames() {
			t.Run(name+"/"+opt, func(t *testing.T) {
				cfg := nativeTestConfig(8)
				cfg.Optimizer.Name = opt
				o := &cfg.Optimizer
				var update func(w, g reference.Params)
				switch opt {
				case "adam":
					update = reference.NewAdam(o.LearningRate, o.Beta1, o.Beta2, o.Epsilon).Update
				case "sgd":
					o.LearningRate = 0.05
					update = reference.NewSGD(o.LearningRate, o.Momentum).Update
				default:
					t.Fatalf("no reference for optimizer %q", opt)
				}
				threeStepsMatchReference(t, newTestEngine(t, testEngines()[name], cfg), set, order, update)
			})
		}
	}
}

// threeStepsMatchReference loads set into e, an engine of batch 8, runs
// three steps through DeviceLoop (the batches at 0, 8, then 0 again of
// order) and the same through the reference's update, and checks the
// update count and the parameters against the reference's.
func threeStepsMatchReference(t *testing.T, e model.Engine, set *data.Set, order []int, update func(w, g reference.Params)) {
	t.Helper()
	load(t, e, model.TrainSet, set)
	w := reference.Params(state(t, e).Params.Float64s())
	dl := e.(model.DeviceLoop)
	if err := dl.SetOrder(order); err != nil {
		t.Fatal(err)
	}
	for _, lo := range []int{0, 8, 0} {
		if err := dl.StepAt(lo, lo+8); err != nil {
			t.Fatal(err)
		}
		x, labels := referenceBatch(set, order[lo:lo+8])
		update(w, reference.ForwardBackward(w, x, labels).Grads)
	}
	st := state(t, e)
	if st.Optimizer.Step != 3 {
		t.Errorf("%d updates recorded, want 3", st.Optimizer.Step)
	}
	for i, got := range st.Params.Float64s() {
		if err := maxRelErr(got, w[i], 1e-2); err > nativeTol {
			t.Errorf("%s after 3 steps differs from the reference, rel err %.2g", model.ParamNames()[i], err)
		}
	}
}

// TestGorgoniaCaptureFallsBack makes captures fail (nullcuda's
// NULLCUDA_FAIL_CAPTURE). A capture that fails once is tried again and
// replays; one that always fails leaves the Gorgonia engine saying so once
// and training on, uncaptured, holding only the device memory an engine
// opened without capture holds. Either way it trains exactly as that
// engine.
func TestGorgoniaCaptureFallsBack(t *testing.T) {
	requireNativeGPU(t)
	if !onNullcuda() {
		t.Skip("needs nullcuda, which can make a capture fail")
	}
	set := learnableSet(32, 3)
	order := identity(32)
	cfg := nativeTestConfig(8)
	train := func(opts gorgoniaOptions) (model.State, *graphEngine) {
		e := newTestEngine(t, func(cfg model.Config) (model.Engine, error) { return openGorgonia(cfg, opts) }, cfg)
		load(t, e, model.TrainSet, set)
		dl := e.(model.DeviceLoop)
		if err := dl.SetOrder(order); err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < 32; lo += 8 {
			if err := dl.StepAt(lo, lo+8); err != nil {
				t.Fatal(err)
			}
		}
		return state(t, e), e.(*graphEngine)
	}
	want, uncaptured := train(gorgoniaOptions{})
	for _, tc := range []struct {
		fail     string
		captured bool
		warnings int
	}{
		{"once", true, 0},
		{"all", false, 1},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			t.Setenv("NULLCUDA_FAIL_CAPTURE", tc.fail)
			var warnings []error
			got, e := train(gorgoniaOptions{capture: true, warn: func(err error) { warnings = append(warnings, err) }})
			if captured := e.run.capture != nil && e.run.capture.graph != nil; captured != tc.captured {
				t.Errorf("captured %v, want %v", captured, tc.captured)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("%d warnings, want %d: %v", len(warnings), tc.warnings, warnings)
			}
			if held, want := len(e.run.mem.ptrs), len(uncaptured.run.mem.ptrs); !tc.captured && held != want {
				t.Errorf("%d device allocations after the capture was dropped, want %d as without capture", held, want)
			}
			assertParamsEqual(t, got.Params, want.Params)
			assertOptimizerEqual(t, got.Optimizer, want.Optimizer)
		})
	}
}
