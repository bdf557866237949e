package model

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// The fused ops are the CPU graph's building blocks: a whole dense layer
// (x·W + b, then ReLU) as one Gorgonia op, and the cross-entropy as another,
// each differentiated symbolically into a handful of fused backward ops.
// Built from Gorgonia's stock ops, one training step is 80 instructions:
// the bias alone is a reshape, a size, an allocation, a repeat and an add,
// and ReLU compares into a fresh mask. Most of the step went to that
// bookkeeping and to zeroing freshly allocated outputs. The fused ops keep
// their outputs between runs, so nothing is allocated or zeroed per step.
//
// They compute exactly what the stock ops compute, in the same order, through
// the same matrix kernel, so the two graphs give bit-identical log-
// probabilities and gradients (TestFusedGraphMatchesStockGraph). The CUDA
// build keeps the stock ops, which Gorgonia can place on the GPU.

// fusedOp is what the fused ops share: a name for hashing and printing, and
// the type every one of them has, float32 matrices in and out.
type fusedOp struct{ name string }

func (op fusedOp) String() string        { return op.name }
func (op fusedOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.name) }
func (op fusedOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op fusedOp) ReturnsPtr() bool     { return false }
func (op fusedOp) CallsExtern() bool    { return false }
func (op fusedOp) OverwritesInput() int { return -1 }

// matrixType is a float32 (or any) matrix; scalar is its element type.
func matrixType() (matrix, scalar hm.Type) {
	s := hm.TypeVariable('a')
	return G.TensorType{Dims: 2, Of: s}, s
}

// matrices checks that every input is a float32 matrix and returns their
// data and shapes.
func matrices(op fmt.Stringer, want int, inputs []G.Value) ([][]float32, []tensor.Shape, error) {
	if len(inputs) != want {
		return nil, nil, fmt.Errorf("%v: %d inputs, want %d", op, len(inputs), want)
	}
	data := make([][]float32, want)
	shapes := make([]tensor.Shape, want)
	for i, in := range inputs {
		d, ok := in.(*tensor.Dense)
		if !ok || d.Dtype() != tensor.Float32 || d.Dims() != 2 {
			return nil, nil, fmt.Errorf("%v: input %d is %v %v, want a float32 matrix", op, i, in.Dtype(), in.Shape())
		}
		data[i], shapes[i] = d.Float32s(), d.Shape()
	}
	return data, shapes, nil
}

// outputBuffer keeps an op's result between runs, reallocating only when
// the shape changes.
type outputBuffer struct{ t *tensor.Dense }

func (b *outputBuffer) get(rows, cols int) (*tensor.Dense, []float32) {
	if b.t == nil || !b.t.Shape().Eq(tensor.Shape{rows, cols}) {
		b.t = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(rows, cols))
	}
	return b.t, b.t.Float32s()
}

// sgemm is C = op(A)·op(B) with beta = 0, exactly as Gorgonia's matrix
// product calls the BLAS for these shapes (row-major, no padding).
func sgemm(impl kernels.BLAS, tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32) {
	impl.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n)
}

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
	x, w, err := twoShapes(op, in)
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
	for i := 0; i < batch; i++ {
		row := h[i*out : (i+1)*out]
		for j, bj := range b {
			row[j] += bj
		}
		if op.relu {
			// The stock graph's x ⊙ (x >= 0): a negative input gives -0,
			// and NaN stays NaN.
			for j, v := range row {
				row[j] = v * reluMask(v >= 0)
			}
		}
	}
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
	db, err := G.ApplyOp(&biasGradOp{fusedOp{op.name + ".biasGrad"}}, dz)
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

func twoShapes(op fmt.Stringer, in []G.DimSizer) (tensor.Shape, tensor.Shape, error) {
	if len(in) < 2 {
		return nil, nil, fmt.Errorf("%v: %d input shapes, want at least 2", op, len(in))
	}
	a, ok1 := in[0].(tensor.Shape)
	b, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || a.Dims() != 2 || b.Dims() != 2 {
		return nil, nil, fmt.Errorf("%v: input shapes %v and %v, want matrices", op, in[0], in[1])
	}
	return a, b, nil
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
	a, _, err := twoShapes(op, in)
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
	for i, v := range d[0] {
		// +0 up to +Inf: bit patterns 0 to 0x7f800000.
		dz[i] = reluMask(math.Float32bits(v) <= 0x7f800000) * d[1][i]
	}
	return t, nil
}

// reluMask is 1 or 0. Computed from the comparison without a branch: the
// signs of a layer's pre-activations are a coin toss, and a mispredicted
// branch per element cost more than the rest of the loop.
func reluMask(on bool) float32 {
	var bits uint32
	if on {
		bits = 0x3f800000 // 1.0
	}
	return math.Float32frombits(bits)
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
	a, b, err := twoShapes(op, in)
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

// biasGradOp is db = the column sums of dz, as a 1×out row. It sums through
// the tensor package's own reduction, so the order of the additions is the
// stock graph's.
type biasGradOp struct{ fusedOp }

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
	_, s, err := matrices(op, 1, inputs)
	if err != nil {
		return nil, err
	}
	sum, err := inputs[0].(*tensor.Dense).Sum(0)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if err := sum.Reshape(1, s[0][1]); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return sum, nil
}

// crossEntropyOp is the mean cross-entropy -Σ y⊙logp · invCount from the
// log-probabilities, the one-hot labels and 1/(real rows).
type crossEntropyOp struct{ fusedOp }

func (op *crossEntropyOp) Arity() int { return 3 }

func (op *crossEntropyOp) Type() hm.Type {
	m, s := matrixType()
	return hm.NewFnType(m, m, s, s)
}

func (op *crossEntropyOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *crossEntropyOp) Do(inputs ...G.Value) (G.Value, error) {
	d, _, err := matrices(op, 2, inputs[:min(2, len(inputs))])
	if err != nil {
		return nil, err
	}
	inv, err := scalarF32(op, inputs, 2)
	if err != nil {
		return nil, err
	}
	var total float32
	for i, y := range d[1] {
		total += y * d[0][i]
	}
	return G.NewF32(-(total * inv)), nil
}

func (op *crossEntropyOp) DiffWRT(int) []bool { return []bool{true, false, false} }

func (op *crossEntropyOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dlogp, err := G.ApplyOp(&crossEntropyGradOp{fusedOp: fusedOp{"crossEntropyGrad"}}, inputs[1], inputs[2], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dlogp, nil, nil}, nil
}

func scalarF32(op fmt.Stringer, inputs []G.Value, i int) (float32, error) {
	if len(inputs) <= i {
		return 0, fmt.Errorf("%v: %d inputs, want %d", op, len(inputs), i+1)
	}
	v, ok := inputs[i].Data().(float32)
	if !ok {
		return 0, fmt.Errorf("%v: input %d is %T, want a float32 scalar", op, i, inputs[i].Data())
	}
	return v, nil
}

// crossEntropyGradOp is dlogp = y ⊙ (invCount · -seed), in the stock
// graph's order: the seed (1) negated, times invCount, times each label.
type crossEntropyGradOp struct {
	fusedOp
	out outputBuffer
}

func (op *crossEntropyGradOp) Arity() int { return 3 }

func (op *crossEntropyGradOp) Type() hm.Type {
	m, s := matrixType()
	return hm.NewFnType(m, s, s, m)
}

func (op *crossEntropyGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input shape %v, want a matrix", op, in[0])
	}
	return s, nil
}

func (op *crossEntropyGradOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 1, inputs[:1])
	if err != nil {
		return nil, err
	}
	inv, err := scalarF32(op, inputs, 1)
	if err != nil {
		return nil, err
	}
	seed, err := scalarF32(op, inputs, 2)
	if err != nil {
		return nil, err
	}
	scale := inv * -seed
	t, dlogp := op.out.get(s[0][0], s[0][1])
	for i, y := range d[0] {
		dlogp[i] = y * scale
	}
	return t, nil
}
