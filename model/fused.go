package model

import (
	"fmt"
	"hash"
	"hash/fnv"

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
// their outputs between runs, so the large ones (the 784×128 weight
// gradient above all) are not allocated and zeroed again every step. The
// ops themselves are in fused_dense.go and fused_loss.go.
//
// They compute exactly what the stock ops compute, in the same order, through
// the same matrix kernel, so the two graphs give bit-identical log-
// probabilities and gradients (TestFusedGraphMatchesStockGraph). The cuda
// build's Gorgonia engine has ops of its own with a CUDA side
// (gpu/graph_ops_cuda.go).

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

// maxMatrices is the most matrix inputs a fused op has.
const maxMatrices = 3

// matrices checks that every input is a float32 matrix and returns their
// data and shapes, in arrays so that a step allocates nothing for them.
func matrices(op fmt.Stringer, want int, inputs []G.Value) (data [maxMatrices][]float32, shapes [maxMatrices]tensor.Shape, err error) {
	if len(inputs) != want || want > maxMatrices {
		return data, shapes, fmt.Errorf("%v: %d inputs, want %d", op, len(inputs), want)
	}
	for i, in := range inputs {
		d, ok := in.(*tensor.Dense)
		if !ok || d.Dtype() != tensor.Float32 || d.Dims() != 2 {
			return data, shapes, fmt.Errorf("%v: input %d is %v %v, want a float32 matrix", op, i, in.Dtype(), in.Shape())
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

// TwoMatrixShapes returns the first two of an op's input shapes, which must
// be matrices: what an op's InferShape starts from (here and in package
// gpu's device ops).
func TwoMatrixShapes(op fmt.Stringer, in []G.DimSizer) (tensor.Shape, tensor.Shape, error) {
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
