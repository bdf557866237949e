package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/chewxy/math32"
	"gorgonia.org/tensor"
)

// stableLogSoftmax is the textbook float64 log-softmax of one row, shifted
// by the row's maximum: the reference for the cases below.
func stableLogSoftmax(row []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, v)
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(v - m)
	}
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = v - m - math.Log(sum)
	}
	return out
}

// TestLogSoftmaxRowsLargeLogits: finite logits give finite log-probabilities
// that match the textbook formula, whatever the first logit of the batch
// (which Gorgonia's kernel wrongly shifted every row by).
func TestLogSoftmaxRowsLargeLogits(t *testing.T) {
	cases := []struct {
		name string
		rows [][]float64
	}{
		// Row 1's largest logit is its first and exceeds x[0] by 8000:
		// exp(8000) overflowed, the sum was +Inf, every log-prob -Inf.
		{"overflow", [][]float64{{-3000, 1, 2, 0, 0, 0, 0, 0, 0, 0}, {5000, 0, -10, 0, 0, 0, 0, 0, 0, 0}}},
		// x[0] exceeds every logit of row 1 by far: every exp underflowed
		// to 0, log(0) = -Inf, and the log-probs came out +Inf.
		{"underflow", [][]float64{{4000, 1, 2, 0, 0, 0, 0, 0, 0, 0}, {-500, -400, -450, -420, -600, -410, -430, -440, -401, -402}}},
		{"ordinary", [][]float64{{0.5, -1, 2, 0, 3, 0, 0, 1, 0, -2}, {1, 0, -1, 0, 0, 0, 2, 0, 0, 0}}},
		{"huge spread", [][]float64{{1e30, -1e30, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1e20}}},
		// Row 1's first logit exceeds the shift (x[0] and the rest of the
		// row) by 1e20, where math32.Exp gives 0, not +Inf: the sum looked
		// normal and the first log-prob came out +1e20.
		{"first logit far above the shift", [][]float64{{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {1e20, 0, 0, 0, 0, 0, 0, 0, 0, 5}}},
		// Row 1's largest logit lies 86 below x[0], so the first shift
		// leaves its exp just above the smallest normal float32 while
		// math32.Exp flushes the other nine (88 below) to 0: the sum
		// looked normal, and every log-prob came out 0.8 too high (the
		// nine terms hold 55% of the row's probability).
		{"row just short of underflow", [][]float64{{100, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {14, 12, 12, 12, 12, 12, 12, 12, 12, 12}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var x64 []float64
			var x32 []float32
			for _, r := range c.rows {
				x64 = append(x64, r...)
				for _, v := range r {
					x32 = append(x32, float32(v))
				}
			}
			out64 := make([]float64, len(x64))
			out32 := make([]float32, len(x32))
			logSoftmaxRows(x64, out64, Classes, math.Exp, math.Log, minSum64)
			logSoftmaxRows(x32, out32, Classes, exp32, math32.Log, minSum32)
			for r, row := range c.rows {
				want := stableLogSoftmax(row)
				for j, w := range want {
					got64, got32 := out64[r*Classes+j], float64(out32[r*Classes+j])
					if math.IsInf(got64, 0) || math.IsNaN(got64) || math.IsInf(got32, 0) || math.IsNaN(got32) {
						t.Fatalf("row %d class %d: float64 %v, float32 %v for finite logits", r, j, got64, got32)
					}
					if d := math.Abs(got64 - w); d > 1e-9*math.Max(1, math.Abs(w)) {
						t.Errorf("row %d class %d: float64 %v, want %v", r, j, got64, w)
					}
					if d := math.Abs(got32 - w); d > 1e-5*math.Max(1, math.Abs(w)) {
						t.Errorf("row %d class %d: float32 %v, want %v", r, j, got32, w)
					}
				}
			}
		})
	}
}

// TestLogSoftmaxMatchesGorgoniaWhereFinite: on ordinary logits the op gives
// exactly the bits of Gorgonia's kernel, forward and backward, so that a
// seeded training run reproduces its recorded results.
func TestLogSoftmaxMatchesGorgoniaWhereFinite(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const rows = 64
	x := make([]float32, rows*Classes)
	g := make([]float32, rows*Classes)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 8)
		g[i] = float32(rng.NormFloat64())
	}
	xt := tensor.New(tensor.WithShape(rows, Classes), tensor.WithBacking(x))
	gt := tensor.New(tensor.WithShape(rows, Classes), tensor.WithBacking(g))
	want, err := tensor.LogSoftMax(xt, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantGrad, err := tensor.LogSoftMaxB(want, gt, 1)
	if err != nil {
		t.Fatal(err)
	}

	fwd := &logSoftmaxOp{fusedOp: fusedOp{"logSoftmax"}}
	got, err := fwd.Do(xt)
	if err != nil {
		t.Fatal(err)
	}
	bwd := &logSoftmaxGradOp{fusedOp: fusedOp{"logSoftmaxGrad"}}
	gotGrad, err := bwd.Do(got, gt)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want.Data().([]float32) {
		if gv := got.Data().([]float32)[i]; math.Float32bits(gv) != math.Float32bits(w) {
			t.Fatalf("log-prob %d: %v, Gorgonia %v", i, gv, w)
		}
	}
	for i, w := range wantGrad.Data().([]float32) {
		if gv := gotGrad.Data().([]float32)[i]; math.Float32bits(gv) != math.Float32bits(w) {
			t.Fatalf("gradient %d: %v, Gorgonia %v", i, gv, w)
		}
	}
}

// TestScaledModelLossIsFinite is the reported case: a model whose
// dense3.weight was multiplied by 1000 has huge but finite logits, and its
// evaluation must give a finite loss (it was +Inf) on every CPU graph.
func TestScaledModelLossIsFinite(t *testing.T) {
	cfg := DefaultConfig()
	set := syntheticSet(200, 5)
	for _, v := range []struct {
		name string
		opts []GraphOption
	}{
		{"stock", nil},
		{"fused-pruned", []GraphOption{WithPrunedProgram(), WithFusedOps()}},
	} {
		t.Run(v.name, func(t *testing.T) {
			b := newTestEngine(t, cfg, v.opts...)
			st, err := b.State()
			if err != nil {
				t.Fatal(err)
			}
			w := st.Params.Tensors[4].Float32s() // dense3.weight
			for i := range w {
				w[i] *= 1000
			}
			if err := b.SetState(State{Params: st.Params}); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			m, err := Evaluate(ctx, b, set, cfg.BatchSize)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsInf(m.Loss, 0) || math.IsNaN(m.Loss) || m.Loss <= 0 {
				t.Errorf("test loss %v, want finite and positive", m.Loss)
			}
			lp, err := Predict(ctx, b, set, cfg.BatchSize)
			if err != nil {
				t.Fatal(err)
			}
			// A log-probability may round a few ulps above 0, never more.
			for i, v := range lp {
				if math.IsInf(v, 0) || math.IsNaN(v) || v > 1e-4 {
					t.Fatalf("log-probability %d is %v", i, v)
				}
			}
		})
	}
}

// TestExp32: math32.Exp bit for bit up to 89, and +Inf above, where
// math32.Exp's amd64 assembly gives 0 from about 1e10 on.
func TestExp32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 100000; i++ {
		x := float32(rng.Float64()*200 - 111) // -111 to 89
		if got, want := exp32(x), math32.Exp(x); math32.Float32bits(got) != math32.Float32bits(want) {
			t.Fatalf("exp32(%v) = %v, math32.Exp gives %v", x, got, want)
		}
	}
	for _, x := range []float32{89.001, 100, 1e10, 1e20, 3e38, float32(math.Inf(1))} {
		if got := exp32(x); !math.IsInf(float64(got), 1) {
			t.Errorf("exp32(%v) = %v, want +Inf", x, got)
		}
	}
}
