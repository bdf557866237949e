//go:build cuda

package gpu

import "errors"

// The Gorgonia engine's full training steps, replayed from a CUDA graph.
// Gorgonia's tape machine runs the program once with the stream being
// captured (the ops queue their work on the capture stream, and read the
// batch's place and the update count from the device: gather_images_at,
// dense_rows_at, adam_at); every later full step of the same order and set
// is one cuGraphLaunch of what that run queued: six nodes, no host work
// but the launch. A step of the captured program computes what a run of
// it computes, but Adam's step size, which the device works out (to
// rounding; adam_cuda.go's table), and its products run on the capture
// stream's cuBLAS handle.
// The stream, the handle and the counters are the cudagraph engine's
// (captureState, captured_cuda.go). Partial batches, Step, Forward and the
// state verbs run the program as before, on the legacy stream, after the
// captured steps queued so far.
//
// If the capture fails, nothing has run (the work was being recorded), so
// the engine turns the capture off for good, says why through its warn
// hook, and runs every later step of the program uncaptured.

// capturedStep queues the full training step on order[lo:hi] as one
// replay, capturing a run of the program first if there is no graph for
// this order and set. done is false, with no error, if the capture failed
// and is now off: the caller runs the step itself. Called inside call,
// after the range was checked.
func (e *graphEngine) capturedStep(ds *deviceSet, lo, hi int) (done bool, err error) {
	r := e.run
	c := r.capture
	key := captureKey{order: r.loop.order, images: ds.images, labels: ds.labels, rows: hi - lo}
	r.training, r.set, r.rows = true, ds, hi-lo
	err = r.onDevice(func() error {
		return c.step(lo, key, r.step, func() error {
			r.capturing = true
			defer func() { r.capturing = false }()
			return e.runProgram()
		})
	})
	var ce captureError
	if errors.As(err, &ce) {
		if rerr := r.onDevice(r.dropCapture); rerr != nil {
			return false, errors.Join(err, rerr)
		}
		if e.warn != nil {
			e.warn(err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.step++
	return true, nil
}

// startCapture makes the capture stream and its counters, and has the
// optimizer prepare what captured steps read (Adam's table of step sizes).
// On an error nothing of it is kept. The context is current.
func (r *graphRun) startCapture() error {
	var err error
	if r.capture, err = newCaptureState(&r.mem); err != nil {
		return err
	}
	if err := r.opt.prepare(r.lane, &r.mem); err != nil {
		return errors.Join(err, r.dropCapture())
	}
	return nil
}

// dropCapture turns the capture off for good and frees what only captured
// steps use, so the engine holds what one opened without capture holds.
// The context is current.
func (r *graphRun) dropCapture() error {
	c := r.capture
	r.capture = nil
	return errors.Join(c.release(&r.mem), r.opt.release(&r.mem))
}
