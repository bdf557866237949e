//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
)

// nativeEngine runs the whole training step on the GPU without Gorgonia's
// tape machine: cuBLAS for the matrix products, our kernels (gpu/kernels/
// mlp.cu) for everything else, all data resident on the device. Per step the
// host uploads only the batch's image indices and reads back 2 floats a row
// (loss and hit); parameters, gradients and the optimizer's state never
// leave the GPU unless asked for (State).
//
// It computes what model's graph engine computes (model/graph_engine.go):
// Step reports the batch's mean loss and hits from before the update, and
// batches may be partial.
//
// CUDA contexts are bound to OS threads. Every method locks its goroutine to
// its OS thread, pushes the engine's context, does its work and pops the
// context again (do/withContext), so the engine may be used from any
// goroutine, one call at a time (a mutex serialises calls). All work goes to
// the context's legacy default stream, in order; cuBLAS uses the same stream,
// and the synchronous copies back to the host wait for it.
type nativeEngine struct {
	mu  sync.Mutex
	cfg model.Config
	opt deviceOptimizer

	ctx    cu.CUContext
	hasCtx bool
	blas   *cublas.Standard
	k      *kernels
	legacy lane // the legacy default stream with blas, made once in setup
	mem    deviceMemory

	layout paramLayout
	// Flat device buffers of layout.total floats, in model.Layout order:
	// the parameters, their gradients and the optimizer's slots. The padding
	// between tensors is zero in all of them, and the updates keep it zero.
	params, grads cu.DevicePtr
	slots         []cu.DevicePtr
	step          int64        // optimizer updates applied so far
	nonFinite     cu.DevicePtr // one int: count_nonfinite's answer
	loop          loopState    // DeviceLoop: the epoch's order, the running totals
	batchLoss     cu.DevicePtr // one float: accumulate_scores's batch mean, unread

	buf  batchBuffers
	sets map[model.DataID]*deviceSet // what Load uploaded

	// Host buffers reused across calls.
	hostIdx   []int32
	hostStats []float32
	hostLP    []float32

	closed bool
	broken error // the first device error; the GPU state is unknown after it

	// capture is set for the cudagraph and fused engines (captured_cuda.go):
	// their full training steps replay a CUDA graph on a stream of their own.
	capture *captureState
	// persist is set for the persistent engine (persistent_cuda.go): its
	// full training steps wait in a queue and run many to a launch.
	persist *persistState
}

// Limits that keep every size a kernel sees inside int32.
const maxNativeBatch = 1 << 16

// paramAlign is the alignment of each tensor in the flat buffers, in floats
// (256 bytes, which cuBLAS and coalesced loads like).
const paramAlign = 64

// paramLayout places the six parameter tensors of model.Layout in one flat
// buffer, each aligned to paramAlign floats.
type paramLayout struct {
	specs   [6]model.ParamSpec
	offsets [6]int // in floats
	total   int    // floats, padding included
}

// layerSizes are the widths of the network's four layers of units.
func layerSizes() [4]int {
	return [4]int{model.Inputs, model.Hidden1, model.Hidden2, model.Classes}
}

func newParamLayout() paramLayout {
	l := paramLayout{specs: model.Layout()}
	for i, s := range l.specs {
		l.offsets[i] = l.total
		l.total += (s.Size() + paramAlign - 1) / paramAlign * paramAlign
	}
	return l
}

// flatten copies six host tensors' values (as float64) into a flat float32
// buffer with zero padding; unflatten does the reverse.
func (l paramLayout) flatten(vals [6][]float64) []float32 {
	host := make([]float32, l.total)
	for i, v := range vals {
		off := l.offsets[i]
		for j, x := range v {
			host[off+j] = float32(x)
		}
	}
	return host
}

func (l paramLayout) unflatten(host []float32) [6][]float64 {
	var out [6][]float64
	for i, s := range l.specs {
		off := l.offsets[i]
		out[i] = make([]float64, s.Size())
		for j := range out[i] {
			out[i][j] = float64(host[off+j])
		}
	}
	return out
}

// batchBuffers are the per-batch device buffers, for up to capRows rows.
type batchBuffers struct {
	capRows int
	idx     cu.DevicePtr // int32 [rows]: image numbers of the batch
	// acts[0] is the input x (rows×784), acts[1] and acts[2] the hidden
	// layers' outputs (rows×128, rows×64; each holds x·W before the fused
	// bias+ReLU turns it into the output), acts[3] the logits (rows×10).
	acts [4]cu.DevicePtr
	// deltas[l] is dLoss/d(pre-activation) of layer l's units: deltas[3] is
	// dlogits, deltas[2] and deltas[1] the hidden layers' (rows×64, rows×128).
	// deltas[0] (for the input) is never needed.
	deltas   [4]cu.DevicePtr
	logProbs cu.DevicePtr // rows×10
	stats    cu.DevicePtr // rows×2: per row, cross-entropy and hit (0 or 1)
}

// newNativeEngine opens the native engine on the driver's device number
// ordinal (after Open has narrowed CUDA_VISIBLE_DEVICES, the selected GPU is
// device 0). Parameters start as model.NewParams(Float32, cfg.Seed), exactly
// like the CPU engine's. Only float32 is supported.
func newNativeEngine(ordinal int, cfg model.Config) (model.Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("native cuda: %w", err)
	}
	if cfg.Dtype != tensor.Float32 {
		return nil, fmt.Errorf("native cuda: only float32 is supported, got %v", cfg.Dtype)
	}
	if cfg.BatchSize > maxNativeBatch {
		return nil, fmt.Errorf("native cuda: batch size %d is larger than the supported %d", cfg.BatchSize, maxNativeBatch)
	}
	if ordinal < 0 {
		return nil, fmt.Errorf("native cuda: invalid device number %d", ordinal)
	}
	opt, err := newDeviceOptimizer(cfg.Optimizer)
	if err != nil {
		return nil, fmt.Errorf("native cuda: %w", err)
	}
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("native cuda: initialise parameters: %w", err)
	}
	b := &nativeEngine{cfg: cfg, opt: opt, layout: newParamLayout(), sets: map[model.DataID]*deviceSet{}}
	if err := b.open(ordinal, initial); err != nil {
		return nil, fmt.Errorf("native cuda: %w", errors.Join(err, b.release()))
	}
	return b, nil
}

// open creates the context and everything that lives in it.
func (b *nativeEngine) open(ordinal int, initial *model.Params) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.Init(); err != nil {
		return check("initialising the driver", err)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return check(fmt.Sprintf("getting device %d", ordinal), err)
	}
	ctx, err := dev.MakeContext(cu.SchedAuto)
	if err != nil {
		return check("creating a context", err)
	}
	b.ctx, b.hasCtx = ctx, true
	// cuCtxCreate made the new context current on this thread. Take it off
	// again: from here on every call pushes and pops it around its work.
	if _, err := cu.PopCurrentCtx(); err != nil {
		return check("releasing the new context", err)
	}
	return b.withContext(func() error { return b.setup(initial) })
}

// setup makes the cuBLAS handle, loads the kernels, allocates the buffers
// and uploads the initial parameters. The context is current.
func (b *nativeEngine) setup(initial *model.Params) error {
	h := &cublas.Standard{}
	if err := h.Init(); err != nil {
		return fmt.Errorf("creating the cuBLAS handle: %w", err)
	}
	b.blas = h
	k, err := loadKernels()
	if err != nil {
		return err
	}
	b.k = k
	b.legacy = legacyLane(k, h)

	flat := int64(b.layout.total) * 4
	if b.params, err = b.mem.alloc("parameters", flat); err != nil {
		return err
	}
	if b.grads, err = b.mem.alloc("gradients", flat); err != nil {
		return err
	}
	b.slots = make([]cu.DevicePtr, b.opt.slots())
	for i := range b.slots {
		if b.slots[i], err = b.mem.alloc(fmt.Sprintf("%s's state %d", b.opt.name(), i), flat); err != nil {
			return err
		}
	}
	if b.nonFinite, err = b.mem.alloc("non-finite count", 4); err != nil {
		return err
	}
	if b.batchLoss, err = b.mem.alloc("batch loss", 4); err != nil {
		return err
	}
	if err := b.loop.alloc(&b.mem); err != nil {
		return err
	}
	if err := b.allocBatch(b.cfg.BatchSize); err != nil {
		return err
	}
	return upload("initial parameters", b.params, b.layout.flatten(initial.Float64s()))
}

func (b *nativeEngine) allocBatch(rows int) error {
	sizes := layerSizes()
	f := func(n int) int64 { return int64(rows) * int64(n) * 4 }
	buf := batchBuffers{capRows: rows}
	var err error
	alloc := func(p *cu.DevicePtr, what string, bytes int64) {
		if err == nil {
			*p, err = b.mem.alloc(what, bytes)
		}
	}
	alloc(&buf.idx, "batch indices", f(1))
	for l := 0; l < 4; l++ {
		alloc(&buf.acts[l], fmt.Sprintf("layer %d activations", l), f(sizes[l]))
	}
	for l := 1; l < 4; l++ {
		alloc(&buf.deltas[l], fmt.Sprintf("layer %d deltas", l), f(sizes[l]))
	}
	alloc(&buf.logProbs, "log-probabilities", f(model.Classes))
	alloc(&buf.stats, "per-row results", f(2))
	b.buf = buf
	b.hostIdx = make([]int32, rows)
	b.hostStats = make([]float32, 2*rows)
	b.hostLP = make([]float32, rows*model.Classes)
	return err
}

// withContext runs fn on this goroutine's OS thread with the engine's
// context current, and leaves the thread's context stack as it found it.
func (b *nativeEngine) withContext(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.PushCurrentCtx(b.ctx); err != nil {
		return check("making the context current", err)
	}
	err := fn()
	if _, perr := cu.PopCurrentCtx(); perr != nil {
		err = errors.Join(err, check("releasing the context", perr))
	}
	return err
}

// do runs one public call: one at a time, on an open, healthy engine, with
// the context current. A device error (driver or cuBLAS) leaves the GPU's
// state unknown (an Adam update half applied, say), so it is remembered and
// every later call fails with it; input errors are just returned.
func (b *nativeEngine) do(fn func() error) error {
	return b.call(true, fn)
}

// call is do; legacy says that fn works on the legacy default stream, which
// for the cudagraph and fused engines means after the captured steps queued
// so far, and for the persistent engine after its queued steps launch.
func (b *nativeEngine) call(legacy bool, fn func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("native cuda: the engine is closed")
	}
	if b.broken != nil {
		return fmt.Errorf("native cuda: unusable after an earlier device error: %w", b.broken)
	}
	if legacy && (b.capture != nil || b.persist != nil) {
		inner := fn
		fn = func() error {
			if err := b.settleSteps(); err != nil {
				return err
			}
			return inner()
		}
	}
	err := b.withContext(fn)
	if err == nil {
		return nil
	}
	var ce cudaError
	var be cublas.Status
	if errors.As(err, &ce) || errors.As(err, &be) {
		b.broken = err
	}
	return fmt.Errorf("native cuda: %w", err)
}

// settleSteps puts the full steps queued their own way before work on the
// legacy stream: the captured steps finished (cudagraph, fused), the
// persistent engine's launched (it uses the legacy stream itself). The
// context is current.
func (b *nativeEngine) settleSteps() error {
	if err := b.capture.beforeLegacy(); err != nil {
		return err
	}
	return b.flushSteps()
}

// Load uploads set's images and labels under id, freeing the copy it held
// there before.
func (b *nativeEngine) Load(id model.DataID, set *data.Set) error {
	if err := checkUploadable(id, set); err != nil {
		return fmt.Errorf("native cuda: %w", err)
	}
	return b.do(func() error {
		if old := b.sets[id]; old != nil {
			delete(b.sets, id)
			if err := old.free(&b.mem); err != nil {
				return err
			}
		}
		if id == model.TrainSet {
			if err := b.loop.dropOrder(&b.mem); err != nil {
				return err
			}
		}
		ds, err := uploadSet(&b.mem, set)
		if err != nil {
			return err
		}
		b.sets[id] = ds
		return nil
	})
}

// loaded returns the set held under id after checking idx against it.
// Called inside do.
func (b *nativeEngine) loaded(id model.DataID, idx []int) (*deviceSet, error) {
	ds := b.sets[id]
	if ds == nil {
		return nil, fmt.Errorf("the %v was never loaded", id)
	}
	if err := model.CheckBatch(idx, b.cfg.BatchSize, ds.n); err != nil {
		return nil, err
	}
	return ds, nil
}

// param and grad are the device addresses of tensor i (model.Layout order).
func (b *nativeEngine) param(i int) cu.DevicePtr {
	return b.params + cu.DevicePtr(4*b.layout.offsets[i])
}

func (b *nativeEngine) grad(i int) cu.DevicePtr {
	return b.grads + cu.DevicePtr(4*b.layout.offsets[i])
}

// forward uploads the batch's indices and runs forwardAt on them.
func (b *nativeEngine) forward(ds *deviceSet, idx []int) error {
	hostIdx := b.hostIdx[:len(idx)]
	for r, i := range idx {
		hostIdx[r] = int32(i) // i < set.Len() <= MaxInt32 (checked)
	}
	if err := upload("batch indices", b.buf.idx, hostIdx); err != nil {
		return err
	}
	return b.forwardAt(b.legacy, ds, batchAt{idx: b.buf.idx}, len(idx))
}

// batchAt says where a batch's image numbers are on the device: at idx, or,
// for the captured step, at order + the int at cursor.
type batchAt struct {
	idx           cu.DevicePtr
	order, cursor cu.DevicePtr
}

// forwardAt gathers the batch's rows images and runs the network, ending
// with log-probabilities, dlogits and per-row results.
func (b *nativeEngine) forwardAt(l lane, ds *deviceSet, at batchAt, rows int) error {
	acts := b.buf.acts
	var err error
	if at.cursor != 0 {
		err = l.launch(kGatherImagesAt, rows*model.Inputs,
			argPtr(ds.images), argPtr(at.order), argPtr(at.cursor), argPtr(acts[0]), argInt(rows))
	} else {
		err = l.launch(kGatherImages, rows*model.Inputs,
			argPtr(ds.images), argPtr(at.idx), argPtr(acts[0]), argInt(rows))
	}
	if err != nil {
		return err
	}
	sizes := layerSizes()
	for layer := 0; layer < 3; layer++ {
		in, out := sizes[layer], sizes[layer+1]
		if err := matmulForward(l.gemm, layer, acts[layer], b.param(2*layer), acts[layer+1], rows, in, out); err != nil {
			return err
		}
		id := kDenseBiasReLU
		if layer == 2 {
			id = kDenseBias // the logits: softmax comes in cross_entropy
		}
		if err := l.launch(id, rows*out,
			argPtr(acts[layer+1]), argPtr(b.param(2*layer+1)), argInt(rows), argInt(out)); err != nil {
			return err
		}
	}
	outs := []kernelArg{argPtr(b.buf.logProbs), argPtr(b.buf.deltas[3]), argPtr(b.buf.stats)}
	if at.cursor != 0 {
		return l.launch(kCrossEntropyAt, rows, append([]kernelArg{
			argPtr(acts[3]), argPtr(ds.labels), argPtr(at.order), argPtr(at.cursor), argInt(rows)}, outs...)...)
	}
	return l.launch(kCrossEntropy, rows, append([]kernelArg{
		argPtr(acts[3]), argPtr(ds.labels), argPtr(at.idx), argInt(rows)}, outs...)...)
}

// backward fills the gradient buffer from the last forward's values, layer
// by layer from the top, as reference.ForwardBackward does.
func (b *nativeEngine) backward(l lane, rows int) error {
	sizes := layerSizes()
	acts, deltas := b.buf.acts, b.buf.deltas
	for layer := 2; layer >= 0; layer-- {
		in, out := sizes[layer], sizes[layer+1]
		if err := matmulWeightGrad(l.gemm, layer,
			acts[layer], deltas[layer+1], b.grad(2*layer), rows, in, out); err != nil {
			return err
		}
		if layer == 2 { // the other layers' bias gradients come with their ReLU's, below
			if err := l.launch(kBiasGrad, out,
				argPtr(deltas[layer+1]), argPtr(b.grad(2*layer+1)), argInt(rows), argInt(out)); err != nil {
				return err
			}
		}
		if layer == 0 {
			break // no gradient for the input
		}
		if err := matmulInputGrad(l.gemm, layer,
			deltas[layer+1], b.param(2*layer), deltas[layer], rows, in, out); err != nil {
			return err
		}
		// Through the ReLU of the layer below's output, in place, and that
		// layer's bias gradient (the column sums) in the same kernel.
		if err := l.launch(kReLUGradBias, in,
			argPtr(deltas[layer]), argPtr(acts[layer]), argPtr(deltas[layer]), argPtr(b.grad(2*(layer-1)+1)),
			argInt(rows), argInt(in)); err != nil {
			return err
		}
	}
	return nil
}

// update applies one optimizer step to all parameters at once, over the
// flat buffers.
func (b *nativeEngine) update(l lane) error {
	b.step++
	if b.capture != nil {
		b.capture.stepsSet = false // the device's count is one behind now
	}
	return b.opt.update(l, b.params, b.grads, b.slots, b.layout.total, b.step)
}

// Step runs forward, backward and one optimizer update on images idx of
// the training set and reports the loss and hits from before the update.
func (b *nativeEngine) Step(idx []int) (model.StepResult, error) {
	var res model.StepResult
	err := b.do(func() error {
		ds, err := b.loaded(model.TrainSet, idx)
		if err != nil {
			return err
		}
		if err := b.forward(ds, idx); err != nil {
			return err
		}
		if err := b.backward(b.legacy, len(idx)); err != nil {
			return err
		}
		if err := b.update(b.legacy); err != nil {
			return err
		}
		// The per-row results are not touched by the update.
		res, err = readStepResult(b.hostStats[:2*len(idx)], b.buf.stats)
		return err
	})
	if err != nil {
		return model.StepResult{}, err
	}
	return res, nil
}

// SetOrder uploads the epoch's image order (model.DeviceLoop).
func (b *nativeEngine) SetOrder(order []int) error {
	return b.do(func() error {
		n := 0
		if ds := b.sets[model.TrainSet]; ds != nil {
			n = ds.n
		}
		host, err := checkOrder(order, n)
		if err != nil {
			return err
		}
		if b.capture != nil {
			b.capture.nextLo = -1
		}
		return b.loop.setOrder(&b.mem, host)
	})
}

// StepAt trains on order[lo:hi] of the order last set, adding the rows'
// losses and hits to the running totals on the device. It copies nothing
// and does not wait for the GPU. How the step runs is decided under the
// engine's lock, which Close takes to release the capture state.
func (b *nativeEngine) StepAt(lo, hi int) error {
	return b.call(false, func() error {
		full := hi-lo == b.cfg.BatchSize
		switch {
		case b.capture != nil && full:
			return b.capturedStep(lo, hi)
		case b.persist != nil && full:
			return b.persistentStep(lo, hi)
		}
		// On the legacy stream, as do's calls.
		if err := b.settleSteps(); err != nil {
			return err
		}
		return b.uncapturedStep(lo, hi)
	})
}

// uncapturedStep is StepAt's step on the legacy stream: partial batches,
// and every batch of the native engine. Called inside call.
func (b *nativeEngine) uncapturedStep(lo, hi int) error {
	if b.capture != nil {
		// This step moves on neither the device's cursor nor its
		// update count.
		b.capture.nextLo, b.capture.stepsSet = -1, false
	}
	ds, at, err := b.loop.trainingBatch(b.sets, lo, hi, b.cfg.BatchSize)
	if err != nil {
		return err
	}
	rows := hi - lo
	l := b.legacy
	if err := b.forwardAt(l, ds, batchAt{idx: at}, rows); err != nil {
		return err
	}
	if err := b.backward(l, rows); err != nil {
		return err
	}
	if err := b.update(l); err != nil {
		return err
	}
	return b.accumulate(l, rows)
}

// accumulate adds the last forward's rows to the running totals.
func (b *nativeEngine) accumulate(l lane, rows int) error {
	return l.launchBlocks(kAccumulateScores, 1,
		argPtr(b.buf.stats), argInt(rows), argPtr(b.loop.totals), argPtr(b.batchLoss))
}

// Totals reads the running loss and hits; it waits for the queued steps.
func (b *nativeEngine) Totals() (lossSum float64, hits int, err error) {
	err = b.do(func() (err error) {
		lossSum, hits, err = b.loop.readTotals()
		return err
	})
	return lossSum, hits, err
}

// SetTotals starts the running totals at lossSum and hits.
func (b *nativeEngine) SetTotals(lossSum float64, hits int) error {
	if err := checkTotals(hits); err != nil {
		return fmt.Errorf("native cuda: %w", err)
	}
	return b.do(func() error { return b.loop.writeTotals(lossSum, hits) })
}

// Forward runs the network on images idx of set id and copies the
// log-probabilities back.
func (b *nativeEngine) Forward(id model.DataID, idx []int, logProbs []float64) error {
	if len(logProbs) < len(idx)*model.Classes {
		return fmt.Errorf("native cuda: forward: room for %d log-probabilities, need %d", len(logProbs), len(idx)*model.Classes)
	}
	return b.do(func() error {
		ds, err := b.loaded(id, idx)
		if err != nil {
			return err
		}
		if err := b.forward(ds, idx); err != nil {
			return err
		}
		lp := b.hostLP[:len(idx)*model.Classes]
		if err := download("log-probabilities", lp, b.buf.logProbs); err != nil {
			return err
		}
		for i, v := range lp {
			logProbs[i] = float64(v)
		}
		return nil
	})
}

// Finite counts the non-finite parameters on the GPU and reads back the
// count: one int, not 109,386 floats.
func (b *nativeEngine) Finite() (bool, error) {
	count := []int32{0}
	err := b.do(func() error {
		if err := b.k.launchBlocks(kCountNonFinite, 1,
			argPtr(b.params), argInt(b.layout.total), argPtr(b.nonFinite)); err != nil {
			return err
		}
		return download("non-finite count", count, b.nonFinite)
	})
	if err != nil {
		return false, err
	}
	return count[0] == 0, nil
}

// State downloads the parameters and the optimizer's slots, returned as
// float64 (exact), with the step count.
func (b *nativeEngine) State() (model.State, error) {
	var host [][]float32
	var step int64
	err := b.do(func() (err error) {
		step = b.step
		host, err = downloadState(b.layout, b.params, b.slots)
		return err
	})
	if err != nil {
		return model.State{}, err
	}
	return hostState(b.layout, b.cfg.Seed, b.opt.name(), step, host[0], host[1:])
}

// SetState checks s, then uploads its parameters and optimizer slots,
// narrowed to the float32 the kernels keep, with zero padding.
func (b *nativeEngine) SetState(s model.State) error {
	params, slots, step, err := flatState(b.layout, b.opt.name(), s)
	if err != nil {
		return fmt.Errorf("native cuda: %w", err)
	}
	return b.do(func() error {
		if err := uploadState(b.params, b.slots, params, slots); err != nil {
			return err
		}
		b.step = step
		if b.capture != nil {
			b.capture.stepsSet = false
		}
		return nil
	})
}

// Close frees all device memory, the cuBLAS handle, the module and the
// context. Calling it again does nothing. It works after a device error too.
func (b *nativeEngine) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.release(); err != nil {
		return fmt.Errorf("native cuda: %w", err)
	}
	return nil
}

// release undoes open, as far as open got. Destroying the context would free
// everything in it anyway, so the context goes last and always.
func (b *nativeEngine) release() error {
	if !b.hasCtx {
		return nil
	}
	errs := []error{b.withContext(func() error {
		errs := []error{b.capture.release(&b.mem)}
		b.capture = nil
		if b.blas != nil {
			if err := b.blas.Close(); err != nil {
				errs = append(errs, fmt.Errorf("destroying the cuBLAS handle: %w", err))
			}
			b.blas = nil
		}
		errs = append(errs, b.k.unload(), b.mem.freeAll())
		b.k = nil
		b.sets = map[model.DataID]*deviceSet{}
		return errors.Join(errs...)
	})}
	errs = append(errs, check("destroying the context", b.ctx.Destroy()))
	b.hasCtx = false
	return errors.Join(errs...)
}
