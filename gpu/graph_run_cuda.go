//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"runtime"

	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model"
)

const (
	imagePixels = model.Inputs
	classes     = model.Classes
)

// graphRun is the Gorgonia engine's device state, which its ops
// (graph_ops_cuda.go) work on, and what the next run of the program does.
// Everything here lives in the tape machine's own CUDA context (ctx): a
// context's memory is not valid in another.
type graphRun struct {
	batch  int
	layout paramLayout
	opt    deviceOptimizer

	ctx  cu.CUContext
	blas *cublas.Standard // our own handle, made in ctx
	k    *kernels
	lane lane // the legacy default stream with blas and k, made once in setup
	mem  deviceMemory

	// Flat buffers as in the native engine: parameters, gradients and the
	// optimizer's slots, laid out by layout.
	params, grads cu.DevicePtr
	slots         []cu.DevicePtr
	step          int64

	// The Gorgonia values over params, grads and dh1 (makeValues).
	paramVals, gradVals []*deviceBuffer
	dh1Val              *deviceBuffer

	// Every other op's output, one buffer each, reserved by the op when
	// the graph is built (reserveOutput) and allocated in setup: the
	// machine's arena allocates nothing, so its program has no allocation
	// instructions and a step no header to make.
	outShapes []tensor.Shape
	outVals   []*deviceBuffer

	// What the rows kernel (dense_rows) leaves: each layer's units and the
	// gradients at them, the log-probabilities, each row's loss and hit,
	// and its count of finished blocks (0 between launches).
	h1, h2, dh1, dh2  cu.DevicePtr // batch×128, batch×64
	dlogits, logProbs cu.DevicePtr // batch×10 each
	stats             cu.DevicePtr // batch×2
	rowsDone          cu.DevicePtr // 1 int
	nonFinite         cu.DevicePtr // 1 int: count_nonfinite's answer
	idx               cu.DevicePtr // batch ints: Step's and Forward's image numbers
	loop              loopState    // the epoch's order, the running totals

	// The next run: training (all ops) or forward only, over rows images
	// of set, whose numbers are at batchIdx on the device.
	training bool
	set      *deviceSet
	batchIdx cu.DevicePtr
	rows     int

	// capture, unless nil, replays full training steps from a CUDA graph
	// (graph_capture_cuda.go); capturing is set while a run of the
	// program is being captured: the ops then queue their work on the
	// capture stream, and read the batch's place and the update count
	// from the device instead of their arguments.
	capture   *captureState
	capturing bool
}

// onDevice runs fn on a locked OS thread with the machine's context
// current. The tape machine calls the ops on a goroutine of its own, which
// may change threads between two calls: each op sets the context again.
func (r *graphRun) onDevice(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(r.ctx); err != nil {
		return check("making the machine's context current", err)
	}
	return fn()
}

// setup makes the cuBLAS handle, loads the kernels, allocates the state
// and uploads the initial parameters, in the machine's context.
func (r *graphRun) setup(initial *model.Params) error {
	return r.onDevice(func() error {
		h := &cublas.Standard{}
		if err := h.Init(); err != nil {
			return fmt.Errorf("creating the cuBLAS handle: %w", err)
		}
		r.blas = h
		k, err := loadKernels()
		if err != nil {
			return err
		}
		r.k = k
		r.lane = legacyLane(k, h)
		flat := int64(r.layout.total) * 4
		rows := int64(r.batch)
		allocs := []struct {
			p     *cu.DevicePtr
			what  string
			bytes int64
		}{
			{&r.params, "parameters", flat},
			{&r.grads, "gradients", flat},
			{&r.h1, "hidden layer 1", rows * model.Hidden1 * 4},
			{&r.h2, "hidden layer 2", rows * model.Hidden2 * 4},
			{&r.dh1, "hidden layer 1 gradients", rows * model.Hidden1 * 4},
			{&r.dh2, "hidden layer 2 gradients", rows * model.Hidden2 * 4},
			{&r.dlogits, "logit gradients", rows * classes * 4},
			{&r.rowsDone, "rows' finished blocks", 4},
			{&r.logProbs, "log-probabilities", rows * classes * 4},
			{&r.stats, "per-row results", rows * 2 * 4},
			{&r.nonFinite, "non-finite count", 4},
			{&r.idx, "batch indices", rows * 4},
		}
		for _, a := range allocs {
			if *a.p, err = r.mem.alloc(a.what, a.bytes); err != nil {
				return err
			}
		}
		if err := r.loop.alloc(&r.mem); err != nil {
			return err
		}
		r.slots = make([]cu.DevicePtr, r.opt.slots())
		for i := range r.slots {
			if r.slots[i], err = r.mem.alloc(fmt.Sprintf("%s's state %d", r.opt.name(), i), flat); err != nil {
				return err
			}
		}
		r.outVals = make([]*deviceBuffer, len(r.outShapes))
		for i, shape := range r.outShapes {
			p, err := r.mem.alloc(fmt.Sprintf("output %d", i), bufferBytes(shape))
			if err != nil {
				return err
			}
			r.outVals[i] = newDeviceBuffer(p, shape)
		}
		r.makeValues()
		return upload("initial parameters", r.params, r.layout.flatten(initial.Float64s()))
	})
}

// release frees what setup made; the machine's Close then destroys the
// context.
func (r *graphRun) release() error {
	if r.ctx == (cu.CUContext{}) {
		return nil
	}
	return r.onDevice(func() error {
		errs := []error{r.capture.release(&r.mem)}
		r.capture = nil
		if r.blas != nil {
			if err := r.blas.Close(); err != nil {
				errs = append(errs, fmt.Errorf("destroying the cuBLAS handle: %w", err))
			}
			r.blas = nil
		}
		errs = append(errs, r.k.unload(), r.mem.freeAll())
		r.k = nil
		return errors.Join(errs...)
	})
}

func (r *graphRun) param(i int) cu.DevicePtr { return r.params + cu.DevicePtr(4*r.layout.offsets[i]) }
func (r *graphRun) grad(i int) cu.DevicePtr  { return r.grads + cu.DevicePtr(4*r.layout.offsets[i]) }

// makeValues makes the Gorgonia values over the buffers the run owns, once
// (deviceBuffer says why not per run).
func (r *graphRun) makeValues() {
	r.paramVals = make([]*deviceBuffer, len(r.layout.specs))
	r.gradVals = make([]*deviceBuffer, len(r.layout.specs))
	for i, s := range r.layout.specs {
		r.paramVals[i] = newDeviceBuffer(r.param(i), tensor.Shape{s.Rows, s.Cols})
		r.gradVals[i] = newDeviceBuffer(r.grad(i), tensor.Shape{s.Rows, s.Cols})
	}
	r.dh1Val = newDeviceBuffer(r.dh1, tensor.Shape{r.batch, model.Hidden1})
}

// reserveOutput reserves an output buffer of this shape for an op, before
// setup allocates them all, and returns its index for output.
func (r *graphRun) reserveOutput(shape tensor.Shape) int {
	r.outShapes = append(r.outShapes, shape)
	return len(r.outShapes) - 1
}

// output is the value over output buffer i.
func (r *graphRun) output(i int) *deviceBuffer { return r.outVals[i] }

func (r *graphRun) paramValue(i int) G.Value { return r.paramVals[i] }
func (r *graphRun) gradValue(i int) G.Value  { return r.gradVals[i] }
func (r *graphRun) dh1Value() G.Value        { return r.dh1Val }

// layerWidths are the inputs and outputs of dense layer l.
func layerWidths(l int) (in, out int) {
	s := layerSizes()
	return s[l], s[l+1]
}

// stepLane is where the ops queue their work: the capture stream while a
// run is captured, else the legacy stream.
func (r *graphRun) stepLane() lane {
	if r.capturing {
		return r.capture.lane(r.k)
	}
	return r.lane
}

func (r *graphRun) gather(x uintptr) error {
	return r.onDevice(func() error {
		if r.capturing {
			return r.stepLane().launch(kGatherImagesAt, r.rows*imagePixels, argPtr(r.set.images),
				argPtr(r.loop.order), argPtr(r.capture.cursor), argPtr(cu.DevicePtr(x)), argInt(r.rows))
		}
		return r.lane.launch(kGatherImages, r.rows*imagePixels,
			argPtr(r.set.images), argPtr(r.batchIdx), argPtr(cu.DevicePtr(x)), argInt(r.rows))
	})
}

// product is z1 = x·W1 (cuBLAS).
func (r *graphRun) product(x, w, out uintptr) error {
	return r.onDevice(func() error {
		return matmulForward(r.stepLane().gemm, 0, cu.DevicePtr(x), cu.DevicePtr(w), cu.DevicePtr(out),
			r.rows, model.Inputs, model.Hidden1)
	})
}

// denseRows runs dense_rows on z1 and the other five parameters (p, in
// model.Layout order from b1): the log-probabilities and per-row results,
// and in training the gradients at the units, the running totals and the
// batch's mean loss in mean. A forward-only run leaves mean unwritten.
// Captured, it is dense_rows_at, whose last block also moves the device's
// cursor and update count on.
func (r *graphRun) denseRows(p [6]uintptr, mean uintptr) error {
	train := 0
	if r.training {
		train = 1
	}
	return r.onDevice(func() error {
		if r.capturing {
			c := r.capture
			return r.stepLane().launchShape(kDenseRowsAt, r.rows, rowThreads,
				argPtr(cu.DevicePtr(p[0])), argPtr(r.h1), argPtr(cu.DevicePtr(p[1])), argPtr(cu.DevicePtr(p[2])),
				argPtr(cu.DevicePtr(p[3])), argPtr(cu.DevicePtr(p[4])), argPtr(cu.DevicePtr(p[5])),
				argPtr(r.set.labels), argPtr(r.loop.order), argPtr(c.cursor), argInt(r.rows), argPtr(r.h2),
				argPtr(r.logProbs), argPtr(r.dlogits), argPtr(r.stats), argPtr(r.dh2), argPtr(r.dh1),
				argPtr(r.loop.totals), argPtr(cu.DevicePtr(mean)), argPtr(r.rowsDone), argPtr(c.steps))
		}
		return r.lane.launchShape(kDenseRows, r.rows, rowThreads,
			argPtr(cu.DevicePtr(p[0])), argPtr(r.h1), argPtr(cu.DevicePtr(p[1])), argPtr(cu.DevicePtr(p[2])),
			argPtr(cu.DevicePtr(p[3])), argPtr(cu.DevicePtr(p[4])), argPtr(cu.DevicePtr(p[5])),
			argPtr(r.set.labels), argPtr(r.batchIdx), argInt(r.rows), argInt(train), argPtr(r.h2),
			argPtr(r.logProbs), argPtr(r.dlogits), argPtr(r.stats), argPtr(r.dh2), argPtr(r.dh1),
			argPtr(r.loop.totals), argPtr(cu.DevicePtr(mean)), argPtr(r.rowsDone))
	})
}

// layerGrads writes every gradient but W1's from what dense_rows left.
func (r *graphRun) layerGrads() error {
	if !r.training {
		return nil
	}
	off := r.layout.offsets
	return r.onDevice(func() error {
		return r.stepLane().launch(kLayerGrads, r.layout.total-off[1],
			argPtr(r.grads), argInt(r.layout.total), argInt(off[1]), argInt(off[2]), argInt(off[3]),
			argInt(off[4]), argInt(off[5]), argPtr(r.h1), argPtr(r.h2), argPtr(r.dh1), argPtr(r.dh2),
			argPtr(r.dlogits), argInt(r.rows))
	})
}

func (r *graphRun) weightGrad(l int, x, dz uintptr) error {
	if !r.training {
		return nil
	}
	in, n := layerWidths(l)
	return r.onDevice(func() error {
		return matmulWeightGrad(r.stepLane().gemm, l,
			cu.DevicePtr(x), cu.DevicePtr(dz), r.grad(2*l), r.rows, in, n)
	})
}

// update applies the optimizer's next step over the flat buffers.
// Captured, it reads the update count from the device, where dense_rows_at
// has already counted this update; the engine counts each replay
// (capturedStep).
func (r *graphRun) update() error {
	if !r.training {
		return nil
	}
	return r.onDevice(func() error {
		if r.capturing {
			return r.opt.updateAt(r.stepLane(), r.params, r.grads, r.slots, r.layout.total, r.capture.steps, true)
		}
		r.step++
		if r.capture != nil {
			r.capture.stepsSet = false // the device's count is one behind now
		}
		return r.opt.update(r.lane, r.params, r.grads, r.slots, r.layout.total, r.step)
	})
}
