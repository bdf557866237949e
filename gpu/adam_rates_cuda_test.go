//go:build cuda

package gpu

import (
	"fmt"
	"testing"

	"mnist/model"
	"mnist/model/reference"
)

// TestAdamRateTable checks the table of Adam's step sizes that adam_at,
// fused_update and train_steps read (mlp.cu's adam_rates and
// adam_rate_at): every entry is the host's model.AdamRate of its update,
// rounded to float32, and a step reads the right one, or works the rate
// out past the table's end. Each engine whose steps read it runs three
// steps against the reference with its table cut to 0, 1 and 2 entries, so
// that steps run both ways; the whole table is what every other test of
// these engines reads (TestCapturedStepsMatchReferenceUpdates, the
// conformance tests). Rates of the first updates differ by tens of percent
// from one update to the next, so an entry off by one shows in the
// parameters.
func TestAdamRateTable(t *testing.T) {
	requireNativeGPU(t)
	t.Run("entries", func(t *testing.T) {
		cfg := nativeTestConfig(8)
		e := newTestEngine(t, testEngines()[EngineCUDAGraph], cfg)
		a := adamOf(t, e)
		if a.nrates != adamRateSteps {
			t.Fatalf("the table has %d entries, want %d", a.nrates, adamRateSteps)
		}
		rates := make([]float32, a.nrates)
		err := e.(*nativeEngine).do(func() error { return download("Adam's step sizes", rates, a.rates) })
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 1, 2, 9, 99, 999, 9374, adamRateSteps - 1} {
			want := float32(model.AdamRate(cfg.Optimizer, int64(i+1)))
			if got := rates[i]; got != want {
				t.Errorf("rate of update %d: %v, host %v", i+1, got, want)
			}
		}
	})
	// Engines whose steps never read the table do not make it.
	t.Run("unread", func(t *testing.T) {
		for name, open := range map[string]opener{
			EngineNative:          openNative,
			"gorgonia-uncaptured": func(cfg model.Config) (model.Engine, error) { return openGorgonia(cfg, gorgoniaOptions{}) },
		} {
			if a := adamOf(t, newTestEngine(t, open, nativeTestConfig(8))); a.rates != 0 || a.nrates != 0 {
				t.Errorf("%s: a table of %d step sizes at %v that no step reads", name, a.nrates, a.rates)
			}
		}
	})
	set := learnableSet(16, 4)
	order := identity(16)
	for _, name := range []string{EngineGorgonia, EngineCUDAGraph, EngineFused, EnginePersistent} {
		for _, nrates := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("%s/table=%d", name, nrates), func(t *testing.T) {
				cfg := nativeTestConfig(8)
				o := cfg.Optimizer
				e := newTestEngine(t, testEngines()[name], cfg)
				adamOf(t, e).nrates = nrates
				threeStepsMatchReference(t, e, set, order,
					reference.NewAdam(o.LearningRate, o.Beta1, o.Beta2, o.Epsilon).Update)
			})
		}
	}
}

// adamOf is the engine's device Adam.
func adamOf(t testing.TB, e model.Engine) *adamOnGPU {
	t.Helper()
	var opt deviceOptimizer
	switch e := e.(type) {
	case *nativeEngine:
		opt = e.opt
	case *graphEngine:
		opt = e.run.opt
	default:
		t.Fatalf("no device optimizer in a %T", e)
	}
	a, ok := opt.(*adamOnGPU)
	if !ok {
		t.Fatalf("the engine's optimizer is a %T, not Adam", opt)
	}
	return a
}
