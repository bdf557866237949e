package model

import (
	"fmt"
	"math"
	"time"
)

// DeviceLoop is what an engine on an accelerator offers so that a training
// step moves nothing between host and device. The epoch's image order goes
// up once, a step names its batch by its place in that order, and each
// row's loss and hit are added to running totals where the engine runs; the
// trainer reads the totals only when it shows progress (every
// deviceReadEvery or so) and at the epoch's end. Engines that lack it are
// driven through Step, which reports every batch.
//
// The totals are running sums, not per-read increments: the trainer
// assigns them, so the order of the additions is the same however often
// they are read, and a run resumed from a checkpoint adds up exactly what
// an uninterrupted one does.
type DeviceLoop interface {
	// SetOrder hands over the training set's image order for the epoch
	// about to run; StepAt names batches by their place in it.
	SetOrder(order []int) error
	// StepAt trains on images order[lo:hi] of the order last set, like
	// Step, adding each row's loss (the cross-entropy, before the update)
	// and hit to the running totals instead of reporting them.
	StepAt(lo, hi int) error
	// Totals returns the running totals: the summed loss and the hits of
	// every image stepped since SetTotals, plus what SetTotals started them at.
	Totals() (lossSum float64, hits int, err error)
	// SetTotals starts the running totals at lossSum and hits: zero at an
	// epoch's start, a restored position's sums when resuming mid-epoch.
	SetTotals(lossSum float64, hits int) error
}

// deviceReadEvery is how often, at most, a DeviceLoop engine's totals are
// read back for the progress display: each read waits for the device to
// finish the work queued so far.
const deviceReadEvery = 100 * time.Millisecond

// stepRunner is how the one training loop (Trainer.epoch) drives its engine:
// batch by batch through Step, or through a DeviceLoop.
type stepRunner interface {
	// begin starts (or, after a restore, resumes) an epoch with this order
	// at position p.
	begin(order []int, p *TrainState) error
	// step trains on order[lo:hi].
	step(order []int, lo, hi int) error
	// due reports whether the totals should be brought up to date after
	// step of steps (they always are at an epoch's end and before a
	// parameter check).
	due(step, steps int) bool
	// collect brings p.LossSum and p.Correct up to date.
	collect(p *TrainState) error
}

func newStepRunner(e Engine) stepRunner {
	if dl, ok := e.(DeviceLoop); ok {
		return &deviceSteps{dl: dl}
	}
	return &hostSteps{e: e}
}

// badLoss is collect's error when the loss is NaN or infinite; the loop
// reports it as divergence.
type badLoss float64

func (b badLoss) Error() string { return fmt.Sprintf("loss is %v", float64(b)) }

func checkLoss(loss float64) error {
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return badLoss(loss)
	}
	return nil
}

// hostSteps reports every step: Step's loss and hits are added on the host.
type hostSteps struct {
	e    Engine
	last StepResult
	rows int
}

func (h *hostSteps) begin([]int, *TrainState) error { return nil }

func (h *hostSteps) step(order []int, lo, hi int) error {
	res, err := h.e.Step(order[lo:hi])
	h.last, h.rows = res, hi-lo
	return err
}

func (h *hostSteps) due(int, int) bool { return true }

func (h *hostSteps) collect(p *TrainState) error {
	if err := checkLoss(h.last.Loss); err != nil {
		return err
	}
	p.LossSum += h.last.Loss * float64(h.rows)
	p.Correct += h.last.Hits
	return nil
}

// deviceSteps keeps the scores on the device and reads them now and then.
type deviceSteps struct {
	dl       DeviceLoop
	lastRead time.Time
}

func (d *deviceSteps) begin(order []int, p *TrainState) error {
	if err := d.dl.SetOrder(order); err != nil {
		return err
	}
	d.lastRead = time.Now()
	return d.dl.SetTotals(p.LossSum, p.Correct)
}

func (d *deviceSteps) step(_ []int, lo, hi int) error { return d.dl.StepAt(lo, hi) }

func (d *deviceSteps) due(step, steps int) bool {
	return step == steps || time.Since(d.lastRead) >= deviceReadEvery
}

func (d *deviceSteps) collect(p *TrainState) error {
	lossSum, hits, err := d.dl.Totals()
	if err != nil {
		return err
	}
	d.lastRead = time.Now()
	if err := checkLoss(lossSum); err != nil {
		return err
	}
	p.LossSum, p.Correct = lossSum, hits
	return nil
}
