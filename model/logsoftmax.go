package model

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"github.com/chewxy/math32"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// logSoftmax is the row-wise log-softmax of a batch×classes matrix of
// logits, for float32 and float64 graphs alike.
//
// It replaces G.LogSoftMax, whose CPU kernel (gorgonia.org/tensor v0.9.24,
// softMaxLastDim) shifts every row by max(x[0][0], row[1:]) instead of the
// row's own maximum: the first logit of the whole batch stands in for each
// row's first one. For ordinary logits the shift does not matter, but with
// large ones (a model whose last layer was scaled ×1000) exp overflows to
// +Inf or every term underflows to 0, and a finite row of logits got a
// log-probability of -Inf, a test loss of +Inf. See logSoftmaxRows for how
// the result stays bit-identical to the old kernel where that one was
// finite, so that training with a given seed reproduces its results.
func logSoftmax(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(&logSoftmaxOp{fusedOp: fusedOp{"logSoftmax"}}, x)
}

// logSoftmaxRows writes the log-softmax of each row of x (cols wide) to
// out. Each row is shifted before exponentiating, and the shift is first
// the one Gorgonia's kernel used, max(x[0], row[1:]) (x[0] being the whole
// batch's first logit), then, only when that leaves the sum of exponentials
// too large (overflowed), too small to be exact (below cols·minSum, see
// minSum32) or NaN, the row's own maximum, which keeps the sum in
// [1, cols]. The first choice keeps every result the old kernel computed
// bit for bit where it was exact (training and the recorded losses depend
// on those bits); the second makes the log-softmax of any finite row
// finite and as exact as an ordinary row's.
func logSoftmaxRows[T float32 | float64](x, out []T, cols int, exp, log func(T) T, minSum T) {
	for r := 0; r+cols <= len(x); r += cols {
		row, o := x[r:r+cols], out[r:r+cols]
		shift := x[0]
		for _, v := range row[1:] {
			if v > shift {
				shift = v
			}
		}
		sum := shiftedExpSum(row, o, shift, exp)
		if !(sum >= minSum*T(cols)) || math.IsInf(float64(sum), 1) {
			shift = row[0]
			for _, v := range row[1:] {
				if v > shift {
					shift = v
				}
			}
			sum = shiftedExpSum(row, o, shift, exp)
		}
		logSum := log(sum)
		for j := range o {
			o[j] -= logSum
		}
	}
}

// minSum32 and minSum64 are, per class of a row, the smallest sum of
// exponentials that the first shift of logSoftmaxRows may leave: the
// smallest normal number over the unit roundoff (2^-126 / 2^-24 and
// 2^-1022 / 2^-53). Below the smallest normal number exp loses its
// result (math32.Exp, so exp32, flushes it to 0; math.Exp keeps fewer
// bits), and the terms lost must stay below the sum's last bit. With the
// sum merely normal, a row whose largest logit lay 86 below the batch's
// first had its other terms, 88 below, flushed to 0 while they held 55%
// of its probability: every log-probability of that row came out 0.8 too
// high.
const (
	minSum32 = 0x1p-102
	minSum64 = 0x1p-969
)

// exp32 is math32.Exp, except that it overflows to +Inf for every input
// above 89. chewxy/math32 v1.10.1's amd64 assembly returns 0 instead from
// about 1e10 up, as its integer exponent wraps around, and logSoftmaxRows
// needs the overflow to see that a shift was too small: a row whose first
// logit was 1e36 above the batch's first got a log-probability of +1e36
// and the evaluation a negative test loss. Below 89 it is math32.Exp bit
// for bit (which already gives +Inf from 88.73 on).
func exp32(x float32) float32 {
	if x > 89 {
		return float32(math.Inf(1))
	}
	return math32.Exp(x)
}

// shiftedExpSum sets o to row - shift and returns Σ exp(row - shift), in
// the order Gorgonia's kernel adds them.
func shiftedExpSum[T float32 | float64](row, o []T, shift T, exp func(T) T) T {
	var sum T
	for j, v := range row {
		z := v - shift
		o[j] = z
		sum += exp(z)
	}
	return sum
}

// logSoftmaxBackward writes the gradient of the logits, dx = g - exp(out)·Σg
// row by row, from the log-softmax out and its gradient g, with the same
// operations in the same order as Gorgonia's kernel.
func logSoftmaxBackward[T float32 | float64](out, g, dx []T, cols int, exp func(T) T) {
	for r := 0; r+cols <= len(out); r += cols {
		sum := g[r]
		for j := 1; j < cols; j++ {
			sum += g[r+j]
		}
		for j := r; j < r+cols; j++ {
			dx[j] = g[j] - (exp(out[j]) * sum)
		}
	}
}

// logSoftmaxOp is the forward op; its result is kept between runs like the
// fused ops' results.
type logSoftmaxOp struct {
	fusedOp
	out denseBuffer
}

func (op *logSoftmaxOp) Arity() int { return 1 }

func (op *logSoftmaxOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m)
}

func (op *logSoftmaxOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: %d input shapes, want 1", op, len(in))
	}
	s, ok := in[0].(tensor.Shape)
	if !ok || s.Dims() != 2 {
		return nil, fmt.Errorf("%v: input shape %v, want a matrix", op, in[0])
	}
	return s.Clone(), nil
}

func (op *logSoftmaxOp) Do(inputs ...G.Value) (G.Value, error) {
	x, err := floatMatrices(op, inputs, 1)
	if err != nil {
		return nil, err
	}
	cols := x[0].Shape()[1]
	t := op.out.get(x[0])
	switch xd := x[0].Data().(type) {
	case []float32:
		logSoftmaxRows(xd, t.Float32s(), cols, exp32, math32.Log, minSum32)
	case []float64:
		logSoftmaxRows(xd, t.Float64s(), cols, math.Exp, math.Log, minSum64)
	}
	return t, nil
}

func (op *logSoftmaxOp) DiffWRT(int) []bool { return []bool{true} }

func (op *logSoftmaxOp) SymDiff(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&logSoftmaxGradOp{fusedOp: fusedOp{"logSoftmaxGrad"}}, output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// logSoftmaxGradOp is the backward op: (log-softmax, its gradient) → the
// gradient of the logits.
type logSoftmaxGradOp struct {
	fusedOp
	out denseBuffer
}

func (op *logSoftmaxGradOp) Arity() int { return 2 }

func (op *logSoftmaxGradOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m, m)
}

func (op *logSoftmaxGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b, err := TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	if !a.Eq(b) {
		return nil, fmt.Errorf("%v: shapes %v and %v differ", op, a, b)
	}
	return a.Clone(), nil
}

func (op *logSoftmaxGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := floatMatrices(op, inputs, 2)
	if err != nil {
		return nil, err
	}
	if !in[0].Shape().Eq(in[1].Shape()) || in[0].Dtype() != in[1].Dtype() {
		return nil, fmt.Errorf("%v: inputs %v %v and %v %v differ", op, in[0].Dtype(), in[0].Shape(), in[1].Dtype(), in[1].Shape())
	}
	cols := in[0].Shape()[1]
	t := op.out.get(in[0])
	switch out := in[0].Data().(type) {
	case []float32:
		logSoftmaxBackward(out, in[1].Float32s(), t.Float32s(), cols, exp32)
	case []float64:
		logSoftmaxBackward(out, in[1].Float64s(), t.Float64s(), cols, math.Exp)
	}
	return t, nil
}

// floatMatrices checks that there are want inputs, each a float32 or
// float64 matrix.
func floatMatrices(op fmt.Stringer, inputs []G.Value, want int) ([]*tensor.Dense, error) {
	if len(inputs) != want {
		return nil, fmt.Errorf("%v: %d inputs, want %d", op, len(inputs), want)
	}
	out := make([]*tensor.Dense, want)
	for i, in := range inputs {
		d, ok := in.(*tensor.Dense)
		if !ok || d.Dims() != 2 || (d.Dtype() != tensor.Float32 && d.Dtype() != tensor.Float64) {
			return nil, fmt.Errorf("%v: input %d is %v %v, want a float32 or float64 matrix", op, i, in.Dtype(), in.Shape())
		}
		out[i] = d
	}
	return out, nil
}

// denseBuffer keeps an op's result between runs, reallocating only when the
// shape or element type of its input changes.
type denseBuffer struct{ t *tensor.Dense }

func (b *denseBuffer) get(like *tensor.Dense) *tensor.Dense {
	if b.t == nil || !b.t.Shape().Eq(like.Shape()) || b.t.Dtype() != like.Dtype() {
		b.t = tensor.New(tensor.Of(like.Dtype()), tensor.WithShape(like.Shape().Clone()...))
	}
	return b.t
}
