//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model"
)

// The Gorgonia engine's ops. Each is a Gorgonia op with a CUDA side
// (G.CUDADoer), so Gorgonia's compiler places every instruction of the
// program on the GPU, and its tape machine runs them there. The network
// is cut where its work changes size: the first layer's product (cuBLAS,
// 784 inputs a row), then everything that works row by row on 128, 64 and
// 10 units (one kernel, dense_rows: the first layer's bias and ReLU,
// layers 2 and 3, the loss, and in training the gradients at every
// layer's units). Their SymDiff builds the backward ops: the first
// layer's weight gradient (cuBLAS) and the other five parameters'
// gradients (one kernel, layer_grads); then the optimizer's update. Six
// launches a step, where an op per layer and per gradient took eighteen:
// at batch 32 a step is a few MFLOP, and its time on a GPU is mostly
// launches. The kernels are the fused engine's (gpu/kernels/mlp.cu): one
// copy of each for both.
//
// All device memory is graphRun's, none the tape machine's arena's: what
// must outlive a run (the parameters, their gradients and the optimizer's
// state, the data sets, the running loss and hits), which the arena would
// hand back at every Reset, the rows' units and gradients, and every op's
// output too, one buffer per op (reserveOutput), so the program allocates
// nothing from the arena and a step makes no tensor header. Each op
// returns a deviceBuffer over its memory, made once: a value type the
// machine never pools (graph_value_cuda.go).
//
// None of them runs on the CPU: their Do refuses. Forward-only runs
// (evaluation, prediction) go through the same program with graphRun's
// training flag off, which makes the backward ops and the update do
// nothing, as Gorgonia's own TrainModeOp ops (dropout, batch norm) switch
// behaviour between training and inference.

// errHostDo is what the ops' CPU side says.
var errHostDo = errors.New("runs on the GPU only (Gorgonia's CUDA tape machine)")

// matrixF32 and scalarF32 are the ops' types: float32 matrices and scalars.
var (
	matrixF32 hm.Type = G.TensorType{Dims: 2, Of: tensor.Float32}
	scalarF32 hm.Type = tensor.Float32
)

// deviceOp is what the ops share: a unique name (Gorgonia merges nodes
// whose ops hash alike), the run they work for, and the refusal to run on
// the host.
type deviceOp struct {
	name string
	run  *graphRun
}

func (op deviceOp) String() string        { return op.name }
func (op deviceOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "mnist-gpu ", op.name) }
func (op deviceOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op deviceOp) OverwritesInput() int { return -1 }

// ReturnsPtr and CallsExtern both true would make Gorgonia's compiler
// preallocate each output from the machine's arena (an alloc instruction,
// and a tensor header, every run) and hand it to CUDADo as prealloc. Every
// op here returns memory the run owns instead, so both are false and
// prealloc is ignored.
func (op deviceOp) ReturnsPtr() bool  { return false }
func (op deviceOp) CallsExtern() bool { return false }

// LaunchesOwnCUDAWork says that the op launches its work itself (graphRun's
// onDevice) and queues nothing on the machine's batched contexts, so the
// adapted Gorgonia's RunAll runs a program made of these ops on the calling
// goroutine instead of handing it between two threads every run
// (scripts/cuda-deps.sh, obstacle 6).
func (op deviceOp) LaunchesOwnCUDAWork() {}

// Every op of the program, so a build against a Gorgonia copy without the
// adaptation fails here rather than quietly paying the hand-over.
var (
	_ G.CUDASelfLauncher = (*paramOp)(nil)
	_ G.CUDASelfLauncher = (*batchOp)(nil)
	_ G.CUDASelfLauncher = (*productOp)(nil)
	_ G.CUDASelfLauncher = (*rowsOp)(nil)
	_ G.CUDASelfLauncher = (*rowsGradOp)(nil)
	_ G.CUDASelfLauncher = (*layerGradsOp)(nil)
	_ G.CUDASelfLauncher = (*gradViewOp)(nil)
	_ G.CUDASelfLauncher = (*weightGradOp)(nil)
	_ G.CUDASelfLauncher = (*updateOp)(nil)
)

func (op deviceOp) Do(...G.Value) (G.Value, error) {
	return nil, fmt.Errorf("%s: %w", op.name, errHostDo)
}

// matricesTo is the type of an op from arity float32 matrices to out.
func matricesTo(arity int, out hm.Type) hm.Type {
	ts := make([]hm.Type, arity+1)
	for i := range arity {
		ts[i] = matrixF32
	}
	ts[arity] = out
	return hm.NewFnType(ts...)
}

// paramOp hands parameter tensor i (model.Layout order) to the graph.
type paramOp struct {
	deviceOp
	index int
}

func (op *paramOp) Arity() int    { return 0 }
func (op *paramOp) Type() hm.Type { return matrixF32 }
func (op *paramOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	s := op.run.layout.specs[op.index]
	return tensor.Shape{s.Rows, s.Cols}, nil
}
func (op *paramOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.paramValue(op.index), nil
}

// A parameter is what Backpropagate differentiates with respect to, so its
// op must be differentiable; it has no inputs to pass a gradient on to.
func (op *paramOp) DiffWRT(int) []bool                                 { return nil }
func (op *paramOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return nil, nil }

// batchOp is the batch of images the run names, gathered on the device
// from the set uploaded by Load and scaled to [0, 1].
type batchOp struct {
	deviceOp
	batch int
	out   int // the run's output buffer
}

func (op *batchOp) Arity() int    { return 0 }
func (op *batchOp) Type() hm.Type { return matrixF32 }
func (op *batchOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.batch, imagePixels}, nil
}
func (op *batchOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	out := op.run.output(op.out)
	return out, op.run.gather(out.Uintptr())
}

// productOp is x·W1, the first layer's product (cuBLAS), into its output;
// the layer's bias and ReLU are the rows op's.
type productOp struct {
	deviceOp
	out int // the run's output buffer
}

func (op *productOp) Arity() int    { return 2 }
func (op *productOp) Type() hm.Type { return matricesTo(2, matrixF32) }
func (op *productOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, w, err := model.TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{x[0], w[1]}, nil
}
func (op *productOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%s: %d inputs, want 2", op.name, len(in))
	}
	out := op.run.output(op.out)
	return out, op.run.product(in[0].Uintptr(), in[1].Uintptr(), out.Uintptr())
}

// The images need no gradient; W1's is xᵀ·dz.
func (op *productOp) DiffWRT(int) []bool { return []bool{false, true} }
func (op *productOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dw, err := G.ApplyOp(&weightGradOp{deviceOp: deviceOp{op.name + ".weight_grad", op.run}, layer: 0}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{nil, dw}, nil
}

// rowsOp is the rest of the network and the loss, from z1 = x·W1 and the
// other five parameters (b1, W2, b2, W3, b3): dense_rows, one block a row.
// Its value is the batch's mean cross-entropy, the graph's cost, written
// in training with the running loss and hits; the kernel also leaves the
// log-probabilities and each row's loss and hit, and in training the
// gradients at every layer's units, which the backward ops read.
type rowsOp struct {
	deviceOp
	out int // the run's output buffer: the batch's mean loss
}

func (op *rowsOp) Arity() int                                     { return 6 }
func (op *rowsOp) Type() hm.Type                                  { return matricesTo(6, scalarF32) }
func (op *rowsOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *rowsOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 6 {
		return nil, fmt.Errorf("%s: %d inputs, want 6", op.name, len(in))
	}
	var p [6]uintptr
	for i, v := range in {
		p[i] = v.Uintptr()
	}
	out := op.run.output(op.out)
	return out, op.run.denseRows(p, out.Uintptr())
}
func (op *rowsOp) DiffWRT(int) []bool { return []bool{true, true, true, true, true, true} }

// SymDiff: the rows op's value is the cost, so the gradient flowing into
// it is Backpropagate's seed, 1. z1's gradient is what the kernel already
// left (rowsGradOp); the five parameters' come from one layer_grads
// launch (layerGradsOp), each handed on by a view of its part of the
// gradient buffer. Reading the rows node orders them after it.
func (op *rowsOp) SymDiff(_ G.Nodes, output, _ *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&rowsGradOp{deviceOp{op.name + ".grad", op.run}}, output)
	if err != nil {
		return nil, err
	}
	grads, err := G.ApplyOp(&layerGradsOp{deviceOp{op.name + ".layer_grads", op.run}, op.run.reserveOutput(tensor.ScalarShape())}, output)
	if err != nil {
		return nil, err
	}
	out := G.Nodes{dz}
	for i := 1; i < 6; i++ {
		v, err := G.ApplyOp(&gradViewOp{deviceOp: deviceOp{fmt.Sprintf("%s.grad%d", op.name, i), op.run}, index: i}, grads)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// rowsGradOp hands on z1's gradient, which the rows kernel left.
type rowsGradOp struct {
	deviceOp
}

func (op *rowsGradOp) Arity() int    { return 1 }
func (op *rowsGradOp) Type() hm.Type { return hm.NewFnType(scalarF32, matrixF32) }
func (op *rowsGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.run.batch, model.Hidden1}, nil
}
func (op *rowsGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.dh1Value(), nil
}

// layerGradsOp writes the gradients of b1, W2, b2, W3 and b3 into the
// gradient buffer the optimizer reads (layer_grads), from what the rows
// kernel left. Its value is a scalar nothing reads: the gradients are
// handed on by gradViewOps.
type layerGradsOp struct {
	deviceOp
	out int // the run's output buffer, never written
}

func (op *layerGradsOp) Arity() int    { return 1 }
func (op *layerGradsOp) Type() hm.Type { return hm.NewFnType(scalarF32, scalarF32) }
func (op *layerGradsOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *layerGradsOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.output(op.out), op.run.layerGrads()
}

// gradViewOp hands on parameter index's gradient, which layerGradsOp wrote.
type gradViewOp struct {
	deviceOp
	index int
}

func (op *gradViewOp) Arity() int    { return 1 }
func (op *gradViewOp) Type() hm.Type { return hm.NewFnType(scalarF32, matrixF32) }
func (op *gradViewOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	s := op.run.layout.specs[op.index]
	return tensor.Shape{s.Rows, s.Cols}, nil
}
func (op *gradViewOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.gradValue(op.index), nil
}

// weightGradOp is xᵀ·dz, a layer's weight gradient, written into the
// gradient buffer the optimizer reads.
type weightGradOp struct {
	deviceOp
	layer int
}

func (op *weightGradOp) Arity() int    { return 2 }
func (op *weightGradOp) Type() hm.Type { return matricesTo(2, matrixF32) }
func (op *weightGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, dz, err := model.TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{x[1], dz[1]}, nil
}
func (op *weightGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%s: %d inputs, want 2", op.name, len(in))
	}
	return op.run.gradValue(2 * op.layer), op.run.weightGrad(op.layer, in[0].Uintptr(), in[1].Uintptr())
}

// updateOp applies one optimizer step to every parameter, in place, from
// the gradients. Its inputs are the six parameters and their six
// gradients, which orders it after everything that reads a parameter; its
// value is a scalar nothing reads.
type updateOp struct {
	deviceOp
	out int // the run's output buffer, never written
}

func (op *updateOp) Arity() int    { return 12 }
func (op *updateOp) Type() hm.Type { return matricesTo(12, scalarF32) }
func (op *updateOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *updateOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.output(op.out), op.run.update()
}
