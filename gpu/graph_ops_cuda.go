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
// program on the GPU, and its tape machine runs them there: the dense
// layer (cuBLAS product, then our bias and ReLU kernel), the loss (softmax,
// cross-entropy, hits and the loss gradient in one kernel), the backward
// ops their SymDiff builds, and the optimizer's update. They mirror the
// CPU build's fused ops (model/fused_*.go) and launch the native engine's
// kernels (gpu/kernels/mlp.cu): one copy of each kernel for both engines.
//
// All device memory is graphRun's, none the tape machine's arena's: what
// must outlive a run (the parameters, their gradients and the optimizer's
// state, the data sets, the running loss and hits), which the arena would
// hand back at every Reset, and every op's output too, one buffer per op
// (reserveOutput), so the program allocates nothing from the arena and a
// step makes no tensor header. Each op returns a deviceBuffer over its
// memory, made once: a value type the machine never pools
// (graph_value_cuda.go).
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
	_ G.CUDASelfLauncher = (*denseOp)(nil)
	_ G.CUDASelfLauncher = (*lossOp)(nil)
	_ G.CUDASelfLauncher = (*lossGradOp)(nil)
	_ G.CUDASelfLauncher = (*reluGradOp)(nil)
	_ G.CUDASelfLauncher = (*weightGradOp)(nil)
	_ G.CUDASelfLauncher = (*biasGradOp)(nil)
	_ G.CUDASelfLauncher = (*inputGradOp)(nil)
	_ G.CUDASelfLauncher = (*updateOp)(nil)
)

func (op deviceOp) Do(...G.Value) (G.Value, error) {
	return nil, fmt.Errorf("%s: %w", op.name, errHostDo)
}

func matrixFn(arity int) hm.Type {
	ts := make([]hm.Type, arity+1)
	for i := range ts {
		ts[i] = matrixF32
	}
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

// denseOp is relu?(x·W + b): cuBLAS's product into the output, then the
// bias (and ReLU) in place.
type denseOp struct {
	deviceOp
	layer     int // 0, 1, 2
	relu      bool
	inputGrad bool // whether x needs a gradient (not for the images)
	out       int  // the run's output buffer
}

func (op *denseOp) Arity() int    { return 3 }
func (op *denseOp) Type() hm.Type { return matrixFn(3) }
func (op *denseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, w, err := model.TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{x[0], w[1]}, nil
}
func (op *denseOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%s: %d inputs, want 3", op.name, len(in))
	}
	out := op.run.output(op.out)
	return out, op.run.dense(op.layer, op.relu, in[0].Uintptr(), in[1].Uintptr(), in[2].Uintptr(), out.Uintptr())
}
func (op *denseOp) DiffWRT(int) []bool { return []bool{op.inputGrad, true, true} }
func (op *denseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	in, n := layerWidths(op.layer)
	dz := grad
	var err error
	if op.relu {
		relu := &reluGradOp{deviceOp{op.name + ".relu_grad", op.run}, op.layer, op.run.reserveOutput(tensor.Shape{op.run.batch, n})}
		if dz, err = G.ApplyOp(relu, output, grad); err != nil {
			return nil, err
		}
	}
	dw, err := G.ApplyOp(&weightGradOp{deviceOp: deviceOp{op.name + ".weight_grad", op.run}, layer: op.layer}, x, dz)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&biasGradOp{deviceOp: deviceOp{op.name + ".bias_grad", op.run}, layer: op.layer, relu: op.relu}, dz)
	if err != nil {
		return nil, err
	}
	var dx *G.Node
	if op.inputGrad {
		down := &inputGradOp{deviceOp{op.name + ".input_grad", op.run}, op.layer, op.run.reserveOutput(tensor.Shape{op.run.batch, in})}
		if dx, err = G.ApplyOp(down, dz, w); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dx, dw, db}, nil
}

// lossOp is the mean cross-entropy of the logits against the batch's
// labels. One kernel computes the log-probabilities, each row's loss and
// hit, and the gradient of the mean loss with respect to the logits (kept
// for lossGradOp); in training, a second adds the rows' losses and hits to
// the running totals and writes the batch's mean loss, the op's value.
type lossOp struct {
	deviceOp
	out int // the run's output buffer: the batch's mean loss
}

func (op *lossOp) Arity() int                                     { return 1 }
func (op *lossOp) Type() hm.Type                                  { return hm.NewFnType(matrixF32, scalarF32) }
func (op *lossOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *lossOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%s: %d inputs, want 1", op.name, len(in))
	}
	out := op.run.output(op.out)
	return out, op.run.loss(in[0].Uintptr(), out.Uintptr())
}
func (op *lossOp) DiffWRT(int) []bool { return []bool{true} }

// SymDiff: the loss is the graph's cost, so the gradient flowing into it is
// Backpropagate's seed, 1, and the logits' gradient is what the loss
// kernel already computed. Reading the loss node orders lossGradOp after it.
func (op *lossOp) SymDiff(_ G.Nodes, output, _ *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(&lossGradOp{deviceOp: deviceOp{op.name + ".grad", op.run}}, output)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// lossGradOp hands on the logits' gradient the loss kernel left.
type lossGradOp struct {
	deviceOp
}

func (op *lossGradOp) Arity() int    { return 1 }
func (op *lossGradOp) Type() hm.Type { return hm.NewFnType(scalarF32, matrixF32) }
func (op *lossGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.run.batch, classes}, nil
}
func (op *lossGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.dlogitsValue(), nil
}

// reluGradOp is the gradient through a ReLU, read off the layer's output.
// Its kernel also writes the layer's bias gradient (the column sums of its
// value), which the layer's biasGradOp, reading this op's value, hands on.
type reluGradOp struct {
	deviceOp
	layer int
	out   int // the run's output buffer
}

func (op *reluGradOp) Arity() int    { return 2 }
func (op *reluGradOp) Type() hm.Type { return matrixFn(2) }
func (op *reluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, _, err := model.TwoMatrixShapes(op, in)
	return a, err
}
func (op *reluGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%s: %d inputs, want 2", op.name, len(in))
	}
	out := op.run.output(op.out)
	return out, op.run.reluGrad(op.layer, in[1].Uintptr(), in[0].Uintptr(), out.Uintptr())
}

// weightGradOp is xᵀ·dz, a layer's weight gradient, written into the
// gradient buffer the optimizer reads.
type weightGradOp struct {
	deviceOp
	layer int
}

func (op *weightGradOp) Arity() int    { return 2 }
func (op *weightGradOp) Type() hm.Type { return matrixFn(2) }
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

// biasGradOp is the column sums of dz, a layer's bias gradient, written
// into the gradient buffer the optimizer reads: by its own kernel for the
// last layer, by the reluGradOp that made dz for a layer with a ReLU.
type biasGradOp struct {
	deviceOp
	layer int
	relu  bool
}

func (op *biasGradOp) Arity() int    { return 1 }
func (op *biasGradOp) Type() hm.Type { return matrixFn(1) }
func (op *biasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if len(in) != 1 || !ok || s.Dims() != 2 {
		return nil, fmt.Errorf("%s: input shape %v, want a matrix", op.name, in)
	}
	return tensor.Shape{1, s[1]}, nil
}
func (op *biasGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%s: %d inputs, want 1", op.name, len(in))
	}
	return op.run.gradValue(2*op.layer + 1), op.run.biasGrad(op.layer, op.relu, in[0].Uintptr())
}

// inputGradOp is dz·Wᵀ, the gradient a layer passes down.
type inputGradOp struct {
	deviceOp
	layer int
	out   int // the run's output buffer
}

func (op *inputGradOp) Arity() int    { return 2 }
func (op *inputGradOp) Type() hm.Type { return matrixFn(2) }
func (op *inputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	dz, w, err := model.TwoMatrixShapes(op, in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{dz[0], w[0]}, nil
}
func (op *inputGradOp) CUDADo(_ G.External, _ G.Device, _ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%s: %d inputs, want 2", op.name, len(in))
	}
	out := op.run.output(op.out)
	return out, op.run.inputGrad(op.layer, in[0].Uintptr(), in[1].Uintptr(), out.Uintptr())
}

// updateOp applies one optimizer step to every parameter, in place, from
// the gradients. Its inputs are the six parameters and their six
// gradients, which orders it after everything that reads a parameter; its
// value is a scalar nothing reads.
type updateOp struct {
	deviceOp
	out int // the run's output buffer, never written
}

func (op *updateOp) Arity() int { return 12 }
func (op *updateOp) Type() hm.Type {
	ts := make([]hm.Type, 13)
	for i := range 12 {
		ts[i] = matrixF32
	}
	ts[12] = scalarF32
	return hm.NewFnType(ts...)
}
func (op *updateOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *updateOp) CUDADo(_ G.External, _ G.Device, _ G.Value, _ ...G.Value) (G.Value, error) {
	return op.run.output(op.out), op.run.update()
}
