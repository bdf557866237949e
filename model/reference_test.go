package model

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"mnist/model/modeltest"
	"mnist/model/reference"
)

var (
	referenceBatch = modeltest.ReferenceBatch
	maxRelErr      = modeltest.MaxRelErr
)

// TestGraphMatchesReference compares the Gorgonia graph with the plain-Go
// reference: loss, log-probabilities, every gradient, then the weights after
// two Adam steps. float64 must agree to rounding; float32 to 1e-4.
func TestGraphMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name string
		dt   tensor.Dtype
		tol  float64
		opts []GraphOption
	}{
		{"float64", tensor.Float64, 1e-9, nil},
		{"float32", tensor.Float32, 1e-4, nil},
		{"float64 pruned", tensor.Float64, 1e-9, []GraphOption{WithPrunedProgram()}},
		{"float32 pruned", tensor.Float32, 1e-4, []GraphOption{WithPrunedProgram()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Dtype, cfg.BatchSize, cfg.Seed = tc.dt, 8, 9
			b, err := NewGraphBackend(cfg, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			params, _ := b.Params()
			set := syntheticSet(8, 3)
			idx := []int{0, 1, 2, 3, 4, 5, 6} // one padded row
			x, labels := referenceBatch(set, idx)
			w := reference.Params(params.Float64s())

			got, err := b.Probe(set, idx)
			if err != nil {
				t.Fatal(err)
			}
			want := reference.ForwardBackward(w, x, labels)
			if e := math.Abs(got.Loss-want.Loss) / want.Loss; e > tc.tol {
				t.Errorf("loss %v, reference %v (rel err %.2g)", got.Loss, want.Loss, e)
			}
			if e := maxRelErr(got.LogProbs, want.LogProbs, 1); e > tc.tol {
				t.Errorf("log-probabilities differ, rel err %.2g", e)
			}
			for i := range want.Grads {
				// Relative to the tensor's largest gradient: tiny entries are
				// all rounding.
				scale := 0.0
				for _, g := range want.Grads[i] {
					scale = math.Max(scale, math.Abs(g))
				}
				if e := maxRelErr(got.Grads[i], want.Grads[i], scale); e > tc.tol {
					t.Errorf("%s gradient differs, rel err %.2g", ParamNames()[i], e)
				}
			}

			opt := reference.NewAdam(cfg.LearningRate, cfg.Beta1, cfg.Beta2, cfg.Epsilon)
			for step := 0; step < 2; step++ {
				if _, err := b.Step(set, idx); err != nil {
					t.Fatal(err)
				}
				opt.Update(w, reference.ForwardBackward(w, x, labels).Grads)
			}
			after := params.Float64s()
			for i := range w {
				if e := maxRelErr(after[i], w[i], 1e-2); e > tc.tol {
					t.Errorf("%s after 2 Adam steps differs, rel err %.2g", ParamNames()[i], e)
				}
			}
		})
	}
}

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
		b, err := NewGraphBackend(cfg, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		listing, err := b.(*graphBackend).Program()
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(listing, inputGrad); got != tc.want {
			t.Errorf("pruned=%v: program allocates %s: %v, want %v", len(tc.opts) > 0, inputGrad, got, tc.want)
		}
	}
}

// TestSetParams: values set on one backend reproduce another's results
// exactly, and a wrong shape is refused.
func TestSetParams(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize = 8
	src, err := NewGraphBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	set := syntheticSet(64, 5)
	for step := 0; step < 3; step++ {
		if _, err := src.Step(set, []int{step, step + 1, step + 2}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Seed++ // different initial weights
	dst, err := NewGraphBackend(cfg, WithPrunedProgram())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	p, _ := src.Params()
	if err := dst.SetParams(p); err != nil {
		t.Fatal(err)
	}
	want, _ := src.Evaluate(set)
	got, _ := dst.Evaluate(set)
	if got != want {
		t.Errorf("after SetParams: %+v, source backend %+v", got, want)
	}
	bad, _ := NewParams(cfg.Dtype, 1)
	bad.Tensors[2], _ = newZeroTensor(cfg.Dtype, tensor.Shape{64, 128})
	if err := dst.SetParams(bad); err == nil || !strings.Contains(err.Error(), "dense2.weight") {
		t.Errorf("SetParams with a transposed dense2.weight: %v, want an error naming it", err)
	}
}
