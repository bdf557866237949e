//go:build cuda

package gpu

import (
	"gorgonia.org/cu"

	"mnist/model"
)

// The fused engine is the cudagraph engine (captured_cuda.go) with a
// captured step of five launches instead of about twenty. At batch 32 a
// step is a few MFLOP, so on a GPU its time is mostly the gaps between
// launches, not arithmetic; what can be one kernel is:
//
//	gather_images_at  the batch's images, scaled
//	cuBLAS            z1 = x.W1                     (the one large product)
//	dense_rows_at     one block a row: the rest of the forward pass, the
//	                  loss, and the gradients at every layer's units; its
//	                  last block adds the running totals and moves the
//	                  cursor and the update count on
//	cuBLAS            dW1 = x'.dh1                   (the other large one)
//	fused_update      one thread a parameter: its gradient (but dW1's) and
//	                  its update
//
// Between the two products everything is small (a row of 128, 64 and 10
// units, gradients summed over the batch's rows), so it is done with plain
// loops in the order the reference adds; the engine agrees with the
// reference within the same 1e-4, and with itself bit for bit from run to
// run. The Gorgonia engine runs the same kernels as ops of its graph
// (graph_ops_cuda.go), without the capture. Partial batches, Step, Forward
// and the state verbs are the native engine's, as for the cudagraph
// engine.

// rowThreads is dense_rows_at's block: a thread per unit of the widest
// layer it computes.
const rowThreads = model.Hidden1

// fused_update's optimizers (FUSED_ADAM, FUSED_SGD in mlp.cu).
const (
	fusedAdam = 0
	fusedSGD  = 1
)

// queueFusedStep queues what the fused engine's capturedStep captures.
func (b *nativeEngine) queueFusedStep(ds *deviceSet, rows int) error {
	c := b.capture
	l := c.lane(b.k)
	acts, deltas := b.buf.acts, b.buf.deltas
	if err := l.launch(kGatherImagesAt, rows*model.Inputs,
		argPtr(ds.images), argPtr(b.loop.order), argPtr(c.cursor), argPtr(acts[0]), argInt(rows)); err != nil {
		return err
	}
	if err := matmulForward(l.gemm, 0, acts[0], b.param(0), acts[1], rows, model.Inputs, model.Hidden1); err != nil {
		return err
	}
	if err := l.launchShape(kDenseRowsAt, rows, rowThreads,
		argPtr(acts[1]), argPtr(acts[1]), argPtr(b.param(1)), argPtr(b.param(2)), argPtr(b.param(3)),
		argPtr(b.param(4)), argPtr(b.param(5)), argPtr(ds.labels), argPtr(b.loop.order), argPtr(c.cursor),
		argInt(rows), argPtr(acts[2]), argPtr(b.buf.logProbs), argPtr(deltas[3]), argPtr(b.buf.stats),
		argPtr(deltas[2]), argPtr(deltas[1]), argPtr(b.loop.totals), argPtr(b.batchLoss), argPtr(c.rowsDone),
		argPtr(c.steps)); err != nil {
		return err
	}
	if err := matmulWeightGrad(l.gemm, 0, acts[0], deltas[1], b.grad(0), rows, model.Inputs, model.Hidden1); err != nil {
		return err
	}
	args := append(b.flatStateArgs(),
		argPtr(acts[1]), argPtr(acts[2]), argPtr(deltas[1]), argPtr(deltas[2]), argPtr(deltas[3]), argInt(rows),
		argPtr(c.steps))
	return l.launch(kFusedUpdate, b.layout.total, append(args, b.opt.fusedArgs()...)...)
}

// flatStateArgs are the arguments with which fused_update and train_steps
// (update_element) find the flat state: the parameters, the gradients, the
// optimizer's two slot arrays (the second unused by SGD), their length and
// where tensors 1 to 5 start in them.
func (b *nativeEngine) flatStateArgs() []kernelArg {
	slots := [2]cu.DevicePtr{b.slots[0]}
	if len(b.slots) > 1 {
		slots[1] = b.slots[1]
	}
	off := b.layout.offsets
	return []kernelArg{argPtr(b.params), argPtr(b.grads), argPtr(slots[0]), argPtr(slots[1]), argInt(b.layout.total),
		argInt(off[1]), argInt(off[2]), argInt(off[3]), argInt(off[4]), argInt(off[5])}
}
