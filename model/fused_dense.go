package model

import (
	"fmt"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// denseOp is relu?(x·W + b) for x batch×in, W in×out, b 1×out.
type denseOp struct {
	fusedOp
	blas      kernels.BLAS // the backend's, with its crew of helpers
	relu      bool
	inputGrad bool // whether x needs a gradient (not for the images)
	out       outputBuffer
}

func newDenseOp(impl kernels.BLAS, layer int, relu, inputGrad bool) *denseOp {
	return &denseOp{fusedOp: fusedOp{fmt.Sprintf("dense%d(relu=%v)", layer, relu)}, blas: impl, relu: relu, inputGrad: inputGrad}
}

func (op *denseOp) Arity() int { return 3 }

func (op *denseOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m, m, m)
}

func (op *denseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, w, err := TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{x[0], w[1]}, nil
}

func (op *denseOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 3, inputs)
	if err != nil {
		return nil, err
	}
	x, w, b := d[0], d[1], d[2]
	batch, in, out := s[0][0], s[0][1], s[1][1]
	if s[1][0] != in || s[2][0] != 1 || s[2][1] != out {
		return nil, fmt.Errorf("%v: shapes %v, %v, %v do not chain", op, s[0], s[1], s[2])
	}
	t, h := op.out.get(batch, out)
	sgemm(op.blas, blas.NoTrans, blas.NoTrans, batch, out, in, x, in, w, out, h)
	// The stock graph's x ⊙ (x >= 0) after the bias: a negative input
	// gives -0, and NaN stays NaN.
	kernels.BiasReLU(h, b, op.relu)
	return t, nil
}

func (op *denseOp) DiffWRT(int) []bool { return []bool{op.inputGrad, true, true} }

func (op *denseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	dz := grad
	var err error
	if op.relu {
		if dz, err = G.ApplyOp(&reluGradOp{fusedOp: fusedOp{op.name + ".reluGrad"}}, output, grad); err != nil {
			return nil, err
		}
	}
	dw, err := G.ApplyOp(newProductOp(op.blas, op.name+".weightGrad", true, false), x, dz)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&biasGradOp{fusedOp: fusedOp{op.name + ".biasGrad"}}, dz)
	if err != nil {
		return nil, err
	}
	var dx *G.Node
	if op.inputGrad {
		if dx, err = G.ApplyOp(newProductOp(op.blas, op.name+".inputGrad", false, true), dz, w); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dx, dw, db}, nil
}

// reluGradOp is dz = mask ⊙ dy, the gradient through ReLU. The mask
// (pre-activation >= 0) is read off the layer's output: a non-negative
// pre-activation passes through unchanged, keeping a clear sign bit, and a
// negative one comes out as -0. (A pre-activation of exactly -0 would be
// taken for negative, but x·W + b cannot be -0: the product's sum starts
// from +0, and +0 plus anything is never -0.)
type reluGradOp struct {
	fusedOp
	out outputBuffer
}

func (op *reluGradOp) Arity() int { return 2 }

func (op *reluGradOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m, m)
}

func (op *reluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, _, err := TwoMatrixShapes(op, in)
	return a, err
}

func (op *reluGradOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 2, inputs)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(s[1]) {
		return nil, fmt.Errorf("%v: output %v and gradient %v differ in shape", op, s[0], s[1])
	}
	t, dz := op.out.get(s[0][0], s[0][1])
	kernels.ReLUGrad(dz, d[0], d[1])
	return t, nil
}

// productOp is op(A)·op(B), each factor transposed or not: xᵀ·dz is a
// layer's weight gradient, dz·Wᵀ the gradient it passes down.
type productOp struct {
	fusedOp
	blas           kernels.BLAS
	transA, transB bool
	out            outputBuffer
}

func newProductOp(impl kernels.BLAS, name string, transA, transB bool) *productOp {
	return &productOp{fusedOp: fusedOp{name}, blas: impl, transA: transA, transB: transB}
}

func (op *productOp) Arity() int { return 2 }

func (op *productOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m, m)
}

// dims are m, k (op(A) is m×k) and n (op(B) is k×n) from the stored shapes.
func (op *productOp) dims(a, b tensor.Shape) (m, k, n int, err error) {
	m, k = a[0], a[1]
	if op.transA {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if op.transB {
		kb, n = n, kb
	}
	if kb != k {
		return 0, 0, 0, fmt.Errorf("%v: factors %v and %v do not chain", op, a, b)
	}
	return m, k, n, nil
}

func (op *productOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b, err := TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	m, _, n, err := op.dims(a, b)
	return tensor.Shape{m, n}, err
}

func (op *productOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 2, inputs)
	if err != nil {
		return nil, err
	}
	m, k, n, err := op.dims(s[0], s[1])
	if err != nil {
		return nil, err
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	if op.transA {
		tA = blas.Trans
	}
	if op.transB {
		tB = blas.Trans
	}
	t, c := op.out.get(m, n)
	// Leading dimensions are the stored rows' lengths: row-major, unpadded.
	sgemm(op.blas, tA, tB, m, n, k, d[0], s[0][1], d[1], s[1][1], c)
	return t, nil
}

// biasGradOp is db = the column sums of dz, as a 1×out row, summed as the
// tensor package's reduction along axis 0 sums them (the stock graph's
// order): the first row, then each later row added in turn.
type biasGradOp struct {
	fusedOp
	out outputBuffer
}

func (op *biasGradOp) Arity() int { return 1 }

func (op *biasGradOp) Type() hm.Type {
	m, _ := matrixType()
	return hm.NewFnType(m, m)
}

func (op *biasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if len(in) != 1 || !ok || s.Dims() != 2 {
		return nil, fmt.Errorf("%v: input shape %v, want a matrix", op, in)
	}
	return tensor.Shape{1, s[1]}, nil
}

func (op *biasGradOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 1, inputs)
	if err != nil {
		return nil, err
	}
	dz, rows, cols := d[0], s[0][0], s[0][1]
	if rows == 0 {
		return nil, fmt.Errorf("%v: no rows to sum", op)
	}
	t, db := op.out.get(1, cols)
	copy(db, dz[:cols])
	for i := 1; i < rows; i++ {
		for j, v := range dz[i*cols : (i+1)*cols] {
			db[j] += v
		}
	}
	return t, nil
}
