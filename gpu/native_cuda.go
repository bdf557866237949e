//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
)

// nativeBackend runs the whole training step on the GPU without Gorgonia's
// tape machine: cuBLAS for the matrix products, our kernels (gpu/kernels/
// mlp.cu) for everything else, all data resident on the device. Per step the
// host uploads only the batch's image indices and reads back 2 floats a row
// (loss and hit); parameters, gradients and Adam's moments never leave the
// GPU unless asked for (Params, Probe).
//
// It computes what model's graph backend computes (model/graph_backend.go):
// Step reports the batch's mean loss and hits from before the update, batches
// may be partial, Evaluate walks the set in order in batches of BatchSize.
//
// CUDA contexts are bound to OS threads. Every method locks its goroutine to
// its OS thread, pushes the backend's context, does its work and pops the
// context again (do/withContext), so the backend may be used from any
// goroutine, one call at a time (a mutex serialises calls). All work goes to
// the context's legacy default stream, in order; cuBLAS uses the same stream,
// and the synchronous copies back to the host wait for it.
type nativeBackend struct {
	mu  sync.Mutex
	cfg model.Config

	ctx    cu.CUContext
	hasCtx bool
	blas   *cublas.Standard
	k      *kernels
	mem    deviceMemory

	layout paramLayout
	// Flat device buffers of layout.total floats, in model.Params order. The
	// padding between tensors is zero in all four, so Adam leaves it zero.
	params, grads, adamM, adamV cu.DevicePtr
	step                        int // Adam updates applied so far

	buf  batchBuffers
	sets []*deviceSet // uploaded data sets, oldest first

	// Host buffers reused across calls.
	hostIdx   []int32
	hostStats []float32

	closed bool
	broken error // the first device error; the GPU state is unknown after it
}

// Limits that keep every size a kernel sees inside int32.
const (
	maxNativeBatch = 1 << 16
	maxCachedSets  = 4 // uploaded data sets kept on the device at once
)

// paramAlign is the alignment of each tensor in the flat buffers, in floats
// (256 bytes, which cuBLAS and coalesced loads like).
const paramAlign = 64

// paramLayout places the six parameter tensors in one flat buffer.
type paramLayout struct {
	shapes  [6]tensor.Shape
	offsets [6]int // in floats
	sizes   [6]int
	total   int // floats, padding included
}

// layerSizes are the widths of the network's four layers of units.
func layerSizes() [4]int {
	return [4]int{model.Inputs, model.Hidden1, model.Hidden2, model.Classes}
}

// newParamLayout checks that p has the shapes the kernels are written for
// (weights [in, out], biases [1, out]) and lays them out.
func newParamLayout(p *model.Params) (paramLayout, error) {
	var l paramLayout
	sizes := layerSizes()
	for i, t := range p.Tensors {
		in, out := sizes[i/2], sizes[i/2+1]
		want := tensor.Shape{in, out}
		if i%2 == 1 {
			want = tensor.Shape{1, out}
		}
		if !t.Shape().Eq(want) {
			return l, fmt.Errorf("native cuda: %s has shape %v, want %v", model.ParamNames()[i], t.Shape(), want)
		}
		if _, ok := t.Data().([]float32); !ok {
			return l, fmt.Errorf("native cuda: %s is %v, want float32", model.ParamNames()[i], t.Dtype())
		}
		l.shapes[i] = t.Shape().Clone()
		l.offsets[i] = l.total
		l.sizes[i] = want.TotalSize()
		l.total += (l.sizes[i] + paramAlign - 1) / paramAlign * paramAlign
	}
	return l, nil
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

// deviceSet is a data.Set uploaded to the GPU, remembered by its *data.Set.
// The slices' addresses and lengths are kept too, so that a Set whose slices
// were replaced is uploaded again. (Changing the bytes in place is not
// noticed: sets are read-only once loaded.)
type deviceSet struct {
	set            *data.Set
	imagesData     *byte
	labelsData     *byte
	nImages, n     int
	images, labels cu.DevicePtr
}

func (ds *deviceSet) matches(s *data.Set) bool {
	return ds.set == s && ds.imagesData == unsafe.SliceData(s.Images) && ds.nImages == len(s.Images) &&
		ds.labelsData == unsafe.SliceData(s.Labels) && ds.n == len(s.Labels)
}

// newNativeBackend opens the native backend on the driver's device number
// ordinal (after Open has narrowed CUDA_VISIBLE_DEVICES, the selected GPU is
// device 0). Parameters start as model.NewParams(Float32, cfg.Seed), exactly
// like the CPU backend's. Only float32 is supported.
func newNativeBackend(ordinal int, cfg model.Config) (model.Backend, error) {
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
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("native cuda: initialise parameters: %w", err)
	}
	layout, err := newParamLayout(initial)
	if err != nil {
		return nil, err
	}
	b := &nativeBackend{cfg: cfg, layout: layout}
	if err := b.open(ordinal, initial); err != nil {
		return nil, errors.Join(err, b.release())
	}
	return b, nil
}

// open creates the context and everything that lives in it.
func (b *nativeBackend) open(ordinal int, initial *model.Params) error {
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
func (b *nativeBackend) setup(initial *model.Params) error {
	h := &cublas.Standard{}
	if err := h.Init(); err != nil {
		return fmt.Errorf("native cuda: creating the cuBLAS handle: %w", err)
	}
	b.blas = h
	k, err := loadKernels()
	if err != nil {
		return err
	}
	b.k = k

	flat := int64(b.layout.total) * 4
	for _, p := range []struct {
		ptr  *cu.DevicePtr
		name string
	}{{&b.params, "parameters"}, {&b.grads, "gradients"}, {&b.adamM, "Adam's m"}, {&b.adamV, "Adam's v"}} {
		if *p.ptr, err = b.mem.alloc(p.name, flat); err != nil {
			return err
		}
	}
	if err := b.allocBatch(b.cfg.BatchSize); err != nil {
		return err
	}
	host := make([]float32, b.layout.total) // zero padding
	for i, t := range initial.Tensors {
		copy(host[b.layout.offsets[i]:], t.Data().([]float32))
	}
	return upload("initial parameters", b.params, host)
}

func (b *nativeBackend) allocBatch(rows int) error {
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
	return err
}

// withContext runs fn on this goroutine's OS thread with the backend's
// context current, and leaves the thread's context stack as it found it.
func (b *nativeBackend) withContext(fn func() error) error {
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

// do runs one public call: one at a time, on an open, healthy backend, with
// the context current. A device error (driver or cuBLAS) leaves the GPU's
// state unknown (an Adam update half applied, say), so it is remembered and
// every later call fails with it; input errors are just returned.
func (b *nativeBackend) do(fn func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("native cuda: the backend is closed")
	}
	if b.broken != nil {
		return fmt.Errorf("native cuda: unusable after an earlier device error: %w", b.broken)
	}
	err := b.withContext(fn)
	var ce cudaError
	var be cublas.Status
	if errors.As(err, &ce) || errors.As(err, &be) {
		b.broken = err
	}
	return err
}

// checkBatch validates a batch before any device work.
func (b *nativeBackend) checkBatch(set *data.Set, idx []int) error {
	if len(idx) == 0 {
		return errors.New("native cuda: empty batch")
	}
	if len(idx) > b.cfg.BatchSize {
		return fmt.Errorf("native cuda: batch of %d images is larger than the batch size %d", len(idx), b.cfg.BatchSize)
	}
	n := set.Len()
	for _, i := range idx {
		if i < 0 || i >= n {
			return fmt.Errorf("native cuda: image index %d out of range for a set of %d images", i, n)
		}
	}
	return nil
}

// deviceSet returns set's copy on the GPU, uploading it on first use.
func (b *nativeBackend) deviceSet(set *data.Set) (*deviceSet, error) {
	for i, ds := range b.sets {
		if ds.set != set {
			continue
		}
		if ds.matches(set) {
			return ds, nil
		}
		// Same Set, new slices: drop the stale copy.
		b.sets = append(b.sets[:i], b.sets[i+1:]...)
		if err := b.freeSet(ds); err != nil {
			return nil, err
		}
		break
	}
	n := set.Len()
	if n == 0 {
		return nil, errors.New("native cuda: the set is empty")
	}
	if n > math.MaxInt32/data.ImageSize || len(set.Images) != n*data.ImageSize {
		return nil, fmt.Errorf("native cuda: a set of %d labels has %d pixels, want %d (at most %d images)",
			n, len(set.Images), n*data.ImageSize, math.MaxInt32/data.ImageSize)
	}
	for i, l := range set.Labels {
		if l >= data.NumClasses {
			return nil, fmt.Errorf("native cuda: label %d of image %d is not a digit 0-9", l, i)
		}
	}
	if len(b.sets) >= maxCachedSets {
		oldest := b.sets[0]
		b.sets = b.sets[1:]
		if err := b.freeSet(oldest); err != nil {
			return nil, err
		}
	}
	ds := &deviceSet{set: set, imagesData: unsafe.SliceData(set.Images), nImages: len(set.Images),
		labelsData: unsafe.SliceData(set.Labels), n: n}
	var err error
	// alloc wants whole 4-byte words; the tail bytes stay zero.
	if ds.images, err = b.mem.alloc("images", roundUp4(len(set.Images))); err != nil {
		return nil, err
	}
	if ds.labels, err = b.mem.alloc("labels", roundUp4(n)); err != nil {
		return nil, errors.Join(err, b.mem.free(ds.images))
	}
	if err := upload("images", ds.images, set.Images); err != nil {
		return nil, err
	}
	if err := upload("labels", ds.labels, set.Labels); err != nil {
		return nil, err
	}
	b.sets = append(b.sets, ds)
	return ds, nil
}

func roundUp4(n int) int64 { return (int64(n) + 3) &^ 3 }

func (b *nativeBackend) freeSet(ds *deviceSet) error {
	return errors.Join(b.mem.free(ds.images), b.mem.free(ds.labels))
}

// param and grad are the device addresses of tensor i (model.Params order).
func (b *nativeBackend) param(i int) cu.DevicePtr {
	return b.params + cu.DevicePtr(4*b.layout.offsets[i])
}

func (b *nativeBackend) grad(i int) cu.DevicePtr {
	return b.grads + cu.DevicePtr(4*b.layout.offsets[i])
}

// forward uploads the batch's indices, gathers its images and runs the
// network, ending with log-probabilities, dlogits and per-row results.
func (b *nativeBackend) forward(ds *deviceSet, idx []int) error {
	rows := len(idx)
	hostIdx := b.hostIdx[:rows]
	for r, i := range idx {
		hostIdx[r] = int32(i) // i < set.Len() <= MaxInt32 (checked)
	}
	if err := upload("batch indices", b.buf.idx, hostIdx); err != nil {
		return err
	}
	acts := b.buf.acts
	if err := b.k.launch(kGatherImages, rows*model.Inputs,
		argPtr(ds.images), argPtr(b.buf.idx), argPtr(acts[0]), argInt(rows)); err != nil {
		return err
	}
	sizes := layerSizes()
	for l := 0; l < 3; l++ {
		in, out := sizes[l], sizes[l+1]
		what := fmt.Sprintf("dense%d forward", l+1)
		if err := matmulForward(b.blas, what, acts[l], b.param(2*l), acts[l+1], rows, in, out); err != nil {
			return err
		}
		id := kBiasReLU
		if l == 2 {
			id = kBiasAdd // the logits: softmax comes in softmax_xent
		}
		if err := b.k.launch(id, rows*out,
			argPtr(acts[l+1]), argPtr(b.param(2*l+1)), argInt(rows), argInt(out)); err != nil {
			return err
		}
	}
	return b.k.launch(kSoftmaxXent, rows,
		argPtr(acts[3]), argPtr(ds.labels), argPtr(b.buf.idx), argInt(rows),
		argPtr(b.buf.logProbs), argPtr(b.buf.deltas[3]), argPtr(b.buf.stats))
}

// backward fills the gradient buffer from the last forward's values, layer
// by layer from the top, as reference.ForwardBackward does.
func (b *nativeBackend) backward(rows int) error {
	sizes := layerSizes()
	acts, deltas := b.buf.acts, b.buf.deltas
	for l := 2; l >= 0; l-- {
		in, out := sizes[l], sizes[l+1]
		if err := matmulWeightGrad(b.blas, fmt.Sprintf("dense%d weight gradient", l+1),
			acts[l], deltas[l+1], b.grad(2*l), rows, in, out); err != nil {
			return err
		}
		if err := b.k.launch(kColSum, out,
			argPtr(deltas[l+1]), argPtr(b.grad(2*l+1)), argInt(rows), argInt(out)); err != nil {
			return err
		}
		if l == 0 {
			break // no gradient for the input
		}
		if err := matmulInputGrad(b.blas, fmt.Sprintf("dense%d input gradient", l+1),
			deltas[l+1], b.param(2*l), deltas[l], rows, in, out); err != nil {
			return err
		}
		// Through the ReLU of layer l's output.
		if err := b.k.launch(kReLUBackward, rows*in,
			argPtr(deltas[l]), argPtr(acts[l]), argInt(rows*in)); err != nil {
			return err
		}
	}
	return nil
}

// adamUpdate applies one Adam step to all parameters at once (one launch
// over the flat buffers). α is computed in float64 like model's adam.
func (b *nativeBackend) adamUpdate() error {
	b.step++
	c := b.cfg
	t := float64(b.step)
	alpha := c.LearningRate * math.Sqrt(1-math.Pow(c.Beta2, t)) / (1 - math.Pow(c.Beta1, t))
	n := b.layout.total
	return b.k.launch(kAdam, n,
		argPtr(b.params), argPtr(b.grads), argPtr(b.adamM), argPtr(b.adamV), argInt(n),
		argFloat(float32(c.Beta1)), argFloat(float32(1-c.Beta1)),
		argFloat(float32(c.Beta2)), argFloat(float32(1-c.Beta2)),
		argFloat(float32(alpha)), argFloat(float32(c.Epsilon)))
}

// readStats copies the per-row results of the last forward back and totals
// them in row order in float64, as model.ScoreLogProbs does: the summed
// cross-entropy and the number of rows classified right.
func (b *nativeBackend) readStats(rows int) (hits int, lossSum float64, err error) {
	stats := b.hostStats[:2*rows]
	if err := download("per-row results", stats, b.buf.stats); err != nil {
		return 0, 0, err
	}
	for r := 0; r < rows; r++ {
		lossSum += float64(stats[2*r])
		if stats[2*r+1] != 0 {
			hits++
		}
	}
	return hits, lossSum, nil
}

// Step runs forward, backward and one Adam update on the images at idx and
// reports the loss and hits from before the update.
func (b *nativeBackend) Step(set *data.Set, idx []int) (model.StepResult, error) {
	if err := b.checkBatch(set, idx); err != nil {
		return model.StepResult{}, err
	}
	var res model.StepResult
	err := b.do(func() error {
		ds, err := b.deviceSet(set)
		if err != nil {
			return err
		}
		if err := b.forward(ds, idx); err != nil {
			return err
		}
		if err := b.backward(len(idx)); err != nil {
			return err
		}
		if err := b.adamUpdate(); err != nil {
			return err
		}
		// The per-row results are not touched by the update.
		hits, lossSum, err := b.readStats(len(idx))
		res = model.StepResult{Loss: lossSum / float64(len(idx)), Hits: hits}
		return err
	})
	if err != nil {
		return model.StepResult{}, err
	}
	return res, nil
}

// Probe runs forward and backward on idx without updating, and copies the
// log-probabilities and gradients out as float64.
func (b *nativeBackend) Probe(set *data.Set, idx []int) (model.Pass, error) {
	if err := b.checkBatch(set, idx); err != nil {
		return model.Pass{}, err
	}
	rows := len(idx)
	var p model.Pass
	err := b.do(func() error {
		ds, err := b.deviceSet(set)
		if err != nil {
			return err
		}
		if err := b.forward(ds, idx); err != nil {
			return err
		}
		if err := b.backward(rows); err != nil {
			return err
		}
		lp := make([]float32, rows*model.Classes)
		if err := download("log-probabilities", lp, b.buf.logProbs); err != nil {
			return err
		}
		grads := make([]float32, b.layout.total)
		if err := download("gradients", grads, b.grads); err != nil {
			return err
		}
		_, lossSum, err := b.readStats(rows)
		if err != nil {
			return err
		}
		p.Loss = lossSum / float64(rows)
		p.LogProbs = float64s(lp)
		for i := range p.Grads {
			off := b.layout.offsets[i]
			p.Grads[i] = float64s(grads[off : off+b.layout.sizes[i]])
		}
		return nil
	})
	if err != nil {
		return model.Pass{}, err
	}
	return p, nil
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Evaluate scores every image of set with the current parameters, in order,
// in batches of BatchSize (the last one partial), like the graph backend.
// Per batch the log-probabilities come back and are scored on the host by
// model.ScoreLogProbsInto, the function every backend scores with, which
// also fills the confusion matrix (the per-row loss and hit a step reads
// back do not say which class was predicted). That is rows×10 floats a
// batch instead of rows×2, once per evaluation, not per training step.
func (b *nativeBackend) Evaluate(set *data.Set) (model.Metrics, error) {
	var m model.Metrics
	var correct int
	var lossSum float64
	err := b.eachBatchLogProbs("evaluate", set, func(idx []int, rows []float32) {
		hits, loss := model.ScoreLogProbsInto(rows, set, idx, &m.Confusion)
		correct += hits
		lossSum += loss
	})
	if err != nil {
		return model.Metrics{}, err
	}
	n := set.Len()
	m.Accuracy, m.Loss, m.Images = float64(correct)/float64(n), lossSum/float64(n), n
	return m, nil
}

// Predict returns the log-probabilities of every image of set, set.Len()×10.
func (b *nativeBackend) Predict(set *data.Set) ([]float64, error) {
	out := make([]float64, 0, set.Len()*model.Classes)
	err := b.eachBatchLogProbs("predict", set, func(_ []int, rows []float32) {
		for _, v := range rows {
			out = append(out, float64(v))
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachBatchLogProbs runs the forward pass over set in order, in batches of
// the batch size, and hands visit each batch's indices and log-probabilities
// (copied to the host; valid only during the call).
func (b *nativeBackend) eachBatchLogProbs(what string, set *data.Set, visit func(idx []int, rows []float32)) error {
	n := set.Len()
	if n == 0 {
		return fmt.Errorf("native cuda: %s: the set is empty", what)
	}
	return b.do(func() error {
		ds, err := b.deviceSet(set)
		if err != nil {
			return err
		}
		batch := b.cfg.BatchSize
		idx := make([]int, 0, batch)
		lp := make([]float32, batch*model.Classes)
		for lo := 0; lo < n; lo += batch {
			idx = idx[:0]
			for i := lo; i < min(lo+batch, n); i++ {
				idx = append(idx, i)
			}
			if err := b.forward(ds, idx); err != nil {
				return fmt.Errorf("%s images %d-%d: %w", what, lo, lo+len(idx)-1, err)
			}
			rows := lp[:len(idx)*model.Classes]
			if err := download("log-probabilities", rows, b.buf.logProbs); err != nil {
				return fmt.Errorf("%s images %d-%d: %w", what, lo, lo+len(idx)-1, err)
			}
			visit(idx, rows)
		}
		return nil
	})
}

// Params copies the current parameters into new host tensors.
func (b *nativeBackend) Params() (*model.Params, error) {
	host := make([]float32, b.layout.total)
	if err := b.do(func() error { return download("parameters", host, b.params) }); err != nil {
		return nil, err
	}
	p := &model.Params{}
	for i := range p.Tensors {
		off := b.layout.offsets[i]
		vals := append([]float32(nil), host[off:off+b.layout.sizes[i]]...)
		p.Tensors[i] = tensor.New(tensor.WithShape(b.layout.shapes[i].Clone()...), tensor.WithBacking(vals))
	}
	return p, nil
}

// SetParams uploads p's values (any float dtype) over the device parameters.
// Adam's moments and step count are left as they are.
func (b *nativeBackend) SetParams(p *model.Params) error {
	host := make([]float32, b.layout.total) // zero padding
	for i, t := range p.Tensors {
		if t == nil {
			return fmt.Errorf("native cuda: set parameters: %s is missing", model.ParamNames()[i])
		}
		if !t.Shape().Eq(b.layout.shapes[i]) {
			return fmt.Errorf("native cuda: set parameters: %s has shape %v, want %v", model.ParamNames()[i], t.Shape(), b.layout.shapes[i])
		}
	}
	for i, vals := range p.Float64s() {
		off := b.layout.offsets[i]
		for j, v := range vals {
			host[off+j] = float32(v)
		}
	}
	return b.do(func() error { return upload("parameters", b.params, host) })
}

// OptimizerState downloads Adam's float32 moments and returns them as
// float64 (exact) with the step count, for checkpoints.
func (b *nativeBackend) OptimizerState() (model.OptimizerState, error) {
	m := make([]float32, b.layout.total)
	v := make([]float32, b.layout.total)
	var step int
	err := b.do(func() error {
		step = b.step
		if err := download("Adam's m", m, b.adamM); err != nil {
			return err
		}
		return download("Adam's v", v, b.adamV)
	})
	if err != nil {
		return model.OptimizerState{}, err
	}
	s := model.OptimizerState{Step: int64(step)}
	for i := range s.M {
		off, n := b.layout.offsets[i], b.layout.sizes[i]
		s.M[i] = make([]float64, n)
		s.V[i] = make([]float64, n)
		for j := range n {
			s.M[i][j] = float64(m[off+j])
			s.V[i][j] = float64(v[off+j])
		}
	}
	return s, nil
}

// SetOptimizerState uploads s's moments, narrowed to the float32 the kernels
// keep, over Adam's buffers (padding zero, as setup leaves it) and sets the
// step count that the bias correction uses.
func (b *nativeBackend) SetOptimizerState(s model.OptimizerState) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("native cuda: set optimizer state: %w", err)
	}
	m := make([]float32, b.layout.total)
	v := make([]float32, b.layout.total)
	for i := range s.M {
		off := b.layout.offsets[i]
		for j := range s.M[i] {
			m[off+j] = float32(s.M[i][j])
			v[off+j] = float32(s.V[i][j])
		}
	}
	return b.do(func() error {
		if err := upload("Adam's m", b.adamM, m); err != nil {
			return err
		}
		if err := upload("Adam's v", b.adamV, v); err != nil {
			return err
		}
		b.step = int(s.Step)
		return nil
	})
}

// Close frees all device memory, the cuBLAS handle, the module and the
// context. Calling it again does nothing. It works after a device error too.
func (b *nativeBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.release()
}

// release undoes open, as far as open got. Destroying the context would free
// everything in it anyway, so the context goes last and always.
func (b *nativeBackend) release() error {
	if !b.hasCtx {
		return nil
	}
	errs := []error{b.withContext(func() error {
		var errs []error
		if b.blas != nil {
			if err := b.blas.Close(); err != nil {
				errs = append(errs, fmt.Errorf("native cuda: destroying the cuBLAS handle: %w", err))
			}
			b.blas = nil
		}
		errs = append(errs, b.k.unload(), b.mem.freeAll())
		b.k = nil
		b.sets = nil
		return errors.Join(errs...)
	})}
	errs = append(errs, check("destroying the context", b.ctx.Destroy()))
	b.hasCtx = false
	return errors.Join(errs...)
}
