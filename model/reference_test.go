package model

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestPrunedProgramSkipsInputGradient: the full program computes the unused
// batch×784 gradient with respect to the images; the pruned one does not,
// and is otherwise the same computation (TestGraphMatchesReference).
func TestPrunedProgramSkipsInputGradient(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize = 8
	inputGrad := "Matrix float32(8, 784)"
	for _, tc := range []struct {
		opts []GraphOption
		want bool
	}{{nil, true}, {[]GraphOption{WithPrunedProgram()}, false}} {
		e, err := NewGraphEngine(cfg, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		listing, err := e.(*graphEngine).Program()
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(listing, inputGrad); got != tc.want {
			t.Errorf("pruned=%v: program allocates %s: %v, want %v", len(tc.opts) > 0, inputGrad, got, tc.want)
		}
	}
}

// TestSetState: a state copied from one engine reproduces its results
// exactly in another, and a wrong shape or optimizer is refused with the
// engine unchanged.
func TestSetState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize = 8
	src := newTestEngine(t, cfg)
	set := syntheticSet(64, 5)
	if err := src.Load(TrainSet, set); err != nil {
		t.Fatal(err)
	}
	for step := 0; step < 3; step++ {
		if _, err := src.Step([]int{step, step + 1, step + 2}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Seed++ // different initial weights
	dst := newTestEngine(t, cfg, WithPrunedProgram())
	st, err := src.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.SetState(st); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, _ := Evaluate(ctx, src, set, cfg.BatchSize)
	got, _ := Evaluate(ctx, dst, set, cfg.BatchSize)
	if got != want {
		t.Errorf("after SetState: %+v, source engine %+v", got, want)
	}
	back, err := dst.State()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Optimizer, st.Optimizer) {
		t.Error("the optimizer state did not come back as it was set")
	}

	bad, _ := NewParams(cfg.Dtype, 1)
	bad.Tensors[2], _ = newZeroTensor(cfg.Dtype, tensor.Shape{64, 128})
	sgdState, _ := NewOptimizerState(sgdName)
	negative, _ := NewOptimizerState(adamName)
	negative.Slots[1][3][5] = -1
	for _, tc := range []struct {
		name string
		s    State
		want string
	}{
		{"transposed weight", State{Params: bad}, "dense2.weight"},
		{"no parameters", State{}, "no parameters"},
		{"another optimizer's state", State{Params: st.Params, Optimizer: sgdState}, "sgd's"},
		{"negative second moment", State{Params: st.Params, Optimizer: negative}, "adam.v.dense2.bias[5]"},
	} {
		before, _ := dst.State()
		if err := dst.SetState(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: SetState = %v, want an error naming %q", tc.name, err, tc.want)
		}
		after, _ := dst.State()
		if !reflect.DeepEqual(before.Optimizer, after.Optimizer) || !reflect.DeepEqual(before.Params.Float64s(), after.Params.Float64s()) {
			t.Errorf("%s: a refused SetState changed the engine", tc.name)
		}
	}
}
