//go:build cuda

package gpu

import (
	"errors"
	"fmt"

	"gorgonia.org/cu"

	"mnist/model"
)

// The cudagraph engine is the native engine with its full training steps
// replayed from a CUDA graph: one step (gather, three dense layers, the
// loss, the backward pass, the optimizer, the running totals) is captured
// once from a stream of its own, and every later full step of the same
// shape is one cuGraphLaunch instead of eighteen launches. A step's
// arguments must then be the same every time, so the captured kernels read
// what changes from device memory: the batch's place in the epoch's order
// (a cursor) and the count of updates done (Adam's step size), both moved
// on by the step's last kernel. Partial batches, Step, Forward and the
// state verbs run as in the native engine, on the legacy stream, after the
// capture stream has been waited for.
//
// The fused engine (fused_cuda.go) is the same with another step captured:
// five launches instead of eighteen, which move the counters on in places
// of their own.
type captureState struct {
	fused     bool      // capture the fused engine's step (queueFusedStep)
	stream    cu.Stream // non-blocking: never synchronised with the legacy stream implicitly
	blas      *streamBLAS
	workspace cu.DevicePtr
	cursor    cu.DevicePtr // int32: where in the order the next captured step starts
	steps     cu.DevicePtr // int64: updates done, for adam_at
	rowsDone  cu.DevicePtr // int: dense_rows_at's finished blocks (fused), 0 between launches
	graph     *replay
	key       captureKey // what graph has baked in

	// What the host knows of the device: the cursor's value (-1: unknown)
	// and whether the device's update count is the engine's step count.
	nextLo   int
	stepsSet bool
	// Work queued since the last wait: on the capture stream, and on the
	// legacy stream (which the capture stream does not wait for).
	onStream, onLegacy bool
}

// captureKey is what a captured step has baked into its kernels' arguments.
type captureKey struct {
	order, images, labels cu.DevicePtr
	rows                  int
}

// newCapturedEngine opens the native engine and adds the capture stream,
// its cuBLAS handle and the device counters. name is the engine:
// EngineCUDAGraph or EngineFused, whose step is captured.
func newCapturedEngine(ordinal int, cfg model.Config, name string) (model.Engine, error) {
	if name != EngineCUDAGraph && name != EngineFused {
		return nil, fmt.Errorf("no captured engine %q", name)
	}
	e, err := newNativeEngine(ordinal, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b := e.(*nativeEngine)
	err = b.withContext(func() error {
		var err error
		if b.capture, err = newCaptureState(&b.mem); err != nil {
			return err
		}
		return b.opt.prepare(b.legacy, &b.mem)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, errors.Join(err, b.Close()))
	}
	b.capture.fused = name == EngineFused
	return b, nil
}

// newCaptureState makes the capture stream, its cuBLAS handle and the
// device counters, in mem. The context is current. On an error, what was
// made is released.
func newCaptureState(mem *deviceMemory) (*captureState, error) {
	c := &captureState{nextLo: -1}
	err := func() error {
		var err error
		if c.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
			return check("creating the capture stream", err)
		}
		if c.workspace, err = mem.alloc("cuBLAS workspace", blasWorkspaceBytes); err != nil {
			return err
		}
		if c.cursor, err = mem.alloc("step cursor", 4); err != nil {
			return err
		}
		if c.steps, err = mem.alloc("update count", 8); err != nil {
			return err
		}
		if c.rowsDone, err = mem.alloc("rows' finished blocks", 4); err != nil {
			return err
		}
		c.blas, err = newStreamBLAS(c.stream, c.workspace)
		return err
	}()
	if err != nil {
		return nil, errors.Join(err, c.release(mem))
	}
	return c, nil
}

// lane is the capture stream with its cuBLAS handle.
func (c *captureState) lane(k *kernels) lane {
	return lane{k: k, stream: c.stream, gemm: c.blas.gemm}
}

// waitStream waits for the captured steps queued so far: before the
// legacy stream reads or changes what they use.
func (c *captureState) waitStream() error {
	if !c.onStream {
		return nil
	}
	c.onStream = false
	return check("waiting for the captured steps", c.stream.Synchronize())
}

// beforeLegacy waits for the captured steps queued so far before work on
// the legacy stream, and notes that work so that the next captured step
// waits for it (waitLegacy). A nil state (no capture) has nothing to wait
// for.
func (c *captureState) beforeLegacy() error {
	if c == nil {
		return nil
	}
	if err := c.waitStream(); err != nil {
		return err
	}
	c.onLegacy = true
	return nil
}

// waitLegacy waits for the legacy stream's work (uploads among it) before
// a captured step, which runs on a stream that does not wait for it.
func (c *captureState) waitLegacy() error {
	if !c.onLegacy {
		return nil
	}
	c.onLegacy = false
	return check("waiting for the legacy stream", cu.Synchronize())
}

// capturedStep queues one full training step on images order[lo:hi],
// capturing the step first if there is no graph for this order and set.
// Called inside call, with the context current.
func (b *nativeEngine) capturedStep(lo, hi int) error {
	ds, _, err := b.loop.trainingBatch(b.sets, lo, hi, b.cfg.BatchSize)
	if err != nil {
		return err
	}
	queue := b.queueCapturedStep
	if b.capture.fused {
		queue = b.queueFusedStep
	}
	key := captureKey{order: b.loop.order, images: ds.images, labels: ds.labels, rows: hi - lo}
	if err := b.capture.step(lo, key, b.step, func() error { return queue(ds, key.rows) }); err != nil {
		return err
	}
	b.step++
	return nil
}

// step queues one replay of the captured step for the batch at lo of the
// order, whose key says what the step's kernels have baked in, after
// updates done so far: capturing it first with queue (which must queue the
// step's work on c.stream) if there is no graph for that key, and telling
// the device where the step starts and the update count if they are not
// what the device holds. The engine's context is current.
func (c *captureState) step(lo int, key captureKey, updates int64, queue func() error) error {
	if err := c.waitLegacy(); err != nil {
		return err
	}
	if c.graph == nil || c.key != key {
		if err := c.graph.destroy(); err != nil {
			return err
		}
		c.graph = nil
		g, err := capture(c.stream, queue)
		if err != nil {
			// Once more: a library may set itself up on first use in a
			// way a capture does not allow (PyTorch warms up before it
			// captures for the same reason), and a failed capture ran
			// nothing.
			g, err = capture(c.stream, queue)
		}
		if err != nil {
			return err
		}
		c.graph, c.key = g, key
	}
	if c.nextLo != lo || !c.stepsSet {
		// After a new order, a partial batch or SetState, or a step that
		// does not follow the last one: tell the device where the step
		// starts and how many updates are done. The upload runs on the
		// legacy stream, which does not wait for the capture stream, so the
		// steps still queued there (they read and move the cursor) must end
		// first.
		if err := c.waitStream(); err != nil {
			return err
		}
		if err := upload("step cursor", c.cursor, []int32{int32(lo)}); err != nil {
			return err
		}
		if err := upload("update count", c.steps, []int64{updates}); err != nil {
			return err
		}
		if err := check("waiting for the counters", cu.Synchronize()); err != nil {
			return err
		}
		c.nextLo, c.stepsSet = lo, true
	}
	if err := c.graph.launch(c.stream); err != nil {
		return err
	}
	c.onStream = true
	c.nextLo = lo + key.rows
	return nil
}

// queueCapturedStep queues what the cudagraph engine's capturedStep
// captures: the native engine's step, reading its batch and update count
// from the device, then the running totals and the counters moved on.
func (b *nativeEngine) queueCapturedStep(ds *deviceSet, rows int) error {
	c := b.capture
	l := c.lane(b.k)
	if err := b.forwardAt(l, ds, batchAt{order: b.loop.order, cursor: c.cursor}, rows); err != nil {
		return err
	}
	if err := b.backward(l, rows); err != nil {
		return err
	}
	if err := b.opt.updateAt(l, b.params, b.grads, b.slots, b.layout.total, c.steps, false); err != nil {
		return err
	}
	return b.finishStep(l, rows)
}

// finishStep queues the captured step's last kernel: the rows' losses and
// hits added to the running totals, and the counters moved on.
func (b *nativeEngine) finishStep(l lane, rows int) error {
	c := b.capture
	return l.launchBlocks(kFinishStep, 1, argPtr(b.buf.stats), argInt(rows), argPtr(b.loop.totals),
		argPtr(b.batchLoss), argPtr(c.cursor), argInt(rows), argPtr(c.steps))
}

// release frees the capture stream's graph, handle and stream, then the
// device memory newCaptureState took from mem: an engine that goes on
// without its capture (the Gorgonia engine's fallback) keeps none of it.
// The context is current.
func (c *captureState) release(mem *deviceMemory) error {
	if c == nil {
		return nil
	}
	errs := []error{c.waitStream(), c.graph.destroy(), c.blas.close()}
	c.graph, c.blas = nil, nil
	if c.stream != (cu.Stream{}) {
		errs = append(errs, check("destroying the capture stream", c.stream.Destroy()))
		c.stream = cu.Stream{}
	}
	// The handle that used the workspace is gone.
	for _, p := range []*cu.DevicePtr{&c.workspace, &c.cursor, &c.steps, &c.rowsDone} {
		if *p != 0 {
			errs = append(errs, mem.free(*p))
			*p = 0
		}
	}
	return errors.Join(errs...)
}
