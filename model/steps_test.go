package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"testing"
)

// hostDeviceLoop gives an engine the DeviceLoop verbs with the totals kept
// in this struct: what a GPU engine keeps on the device, kept on the host so
// that the trainer's device path can be checked against its Step path on
// the CPU. It copies the order it is given, as a device upload does.
type hostDeviceLoop struct {
	Engine
	order     []int
	lossSum   float64
	hits      int
	steps     int // StepAt calls
	reads     int // Totals calls
	cancelAt  int // cancel after this many StepAt calls (0: never)
	cancel    context.CancelFunc
	badTotals bool  // Totals reports a NaN loss
	failAt    int   // StepAt fails at this call with fault (0: never),
	fault     error // and the loop is broken from then on:
	broken    error // Totals fails, with brokenBy, or else with the
	brokenBy  error // fault wrapped, as the GPU engines do
}

func (h *hostDeviceLoop) SetOrder(order []int) error {
	h.order = append(h.order[:0], order...)
	return nil
}

func (h *hostDeviceLoop) StepAt(lo, hi int) error {
	if h.failAt > 0 && h.steps+1 == h.failAt {
		h.broken = h.fault
		return fmt.Errorf("host device: %w", h.fault)
	}
	res, err := h.Engine.Step(h.order[lo:hi])
	if err != nil {
		return err
	}
	h.lossSum += res.Loss * float64(hi-lo)
	h.hits += res.Hits
	if h.steps++; h.steps == h.cancelAt {
		h.cancel()
	}
	return nil
}

func (h *hostDeviceLoop) Totals() (float64, int, error) {
	h.reads++
	if h.broken != nil {
		if h.brokenBy != nil {
			return 0, 0, h.brokenBy
		}
		return 0, 0, fmt.Errorf("host device: unusable after an earlier device error: %w", h.broken)
	}
	if h.badTotals {
		return math.NaN(), h.hits, nil
	}
	return h.lossSum, h.hits, nil
}

func (h *hostDeviceLoop) SetTotals(lossSum float64, hits int) error {
	h.lossSum, h.hits = lossSum, hits
	return nil
}

func newHostDeviceLoop(t *testing.T, cfg Config) *hostDeviceLoop {
	return &hostDeviceLoop{Engine: newTestEngine(t, cfg)}
}

// TestDeviceLoopMatchesStep: the trainer driving an engine through
// DeviceLoop trains exactly as through Step (same parameters, same epoch
// losses and accuracies, bit for bit), reading the totals far less often
// than once a step.
func TestDeviceLoopMatchesStep(t *testing.T) {
	cfg := shortConfig()
	train := syntheticSet(1000, 1) // 32 steps an epoch, the last partial

	want, wantE := newTestTrainer(t, cfg, train)
	wantHist, err := want.Fit(context.Background(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}

	dev := newHostDeviceLoop(t, cfg)
	tr, err := NewTrainer(cfg, dev, train)
	if err != nil {
		t.Fatal(err)
	}
	shown := 0
	hist, err := tr.Fit(context.Background(), Hooks{Step: func(StepStats) { shown++ }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range wantHist {
		if hist[i].Loss != wantHist[i].Loss || hist[i].Accuracy != wantHist[i].Accuracy {
			t.Errorf("epoch %d: %v / %v through DeviceLoop, %v / %v through Step", i+1, hist[i].Loss, hist[i].Accuracy, wantHist[i].Loss, wantHist[i].Accuracy)
		}
	}
	if !bytes.Equal(paramBytes(t, dev), paramBytes(t, wantE)) {
		t.Error("parameters differ between the DeviceLoop and Step paths")
	}
	if steps := 2 * 32; dev.steps != steps || dev.reads >= steps || dev.reads < 2 || shown != dev.reads {
		t.Errorf("%d steps, %d reads, %d progress calls: want %d steps, at least one read an epoch but fewer than one a step, a progress call a read", dev.steps, dev.reads, shown, steps)
	}
}

// TestDeviceLoopResumesExactly: a DeviceLoop run cancelled mid-epoch
// counts every step it took in its position, and a fresh trainer and
// engine resumed from it end exactly where an uninterrupted run does.
func TestDeviceLoopResumesExactly(t *testing.T) {
	cfg := shortConfig()
	train := syntheticSet(1000, 1)

	want := newHostDeviceLoop(t, cfg)
	wantT, err := NewTrainer(cfg, want, train)
	if err != nil {
		t.Fatal(err)
	}
	wantHist, err := wantT.Fit(context.Background(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}

	for _, stopAt := range []int{1, 20, 32, 45} {
		first := newHostDeviceLoop(t, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		first.cancelAt, first.cancel = stopAt, cancel
		tr, err := NewTrainer(cfg, first, train)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Fit(ctx, Hooks{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at step %d: Fit = %v, want context.Canceled", stopAt, err)
		}
		pos, err := tr.State()
		if err != nil {
			t.Fatal(err)
		}
		if done := pos.Epoch*32 + pos.Step; done != stopAt || pos.Seen != min(pos.Step*32, 1000) {
			t.Fatalf("stopped after step %d: position says %d steps, %d images seen", stopAt, done, pos.Seen)
		}
		state, err := first.State()
		if err != nil {
			t.Fatal(err)
		}

		second := newHostDeviceLoop(t, cfg)
		if err := second.SetState(state); err != nil {
			t.Fatal(err)
		}
		tr2, err := NewTrainer(cfg, second, train)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr2.Restore(pos); err != nil {
			t.Fatal(err)
		}
		hist, err := tr2.Fit(context.Background(), Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		last, wantLast := hist[len(hist)-1], wantHist[len(wantHist)-1]
		if last.Loss != wantLast.Loss || last.Accuracy != wantLast.Accuracy {
			t.Errorf("stop at step %d: last epoch %v / %v, uninterrupted %v / %v", stopAt, last.Loss, last.Accuracy, wantLast.Loss, wantLast.Accuracy)
		}
		if !bytes.Equal(paramBytes(t, second), paramBytes(t, want)) {
			t.Errorf("stop at step %d: resumed parameters differ from the uninterrupted run's", stopAt)
		}
	}
}

// TestDeviceLoopDivergence: a NaN in the device's totals stops training as
// divergence, naming the epoch and step it was read at.
func TestDeviceLoopDivergence(t *testing.T) {
	cfg := shortConfig()
	dev := newHostDeviceLoop(t, cfg)
	dev.badTotals = true
	tr, err := NewTrainer(cfg, dev, syntheticSet(1000, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Fit(context.Background(), Hooks{})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Fit = %v, want an error wrapping ErrDiverged", err)
	}
	// The step is the first read's: the epoch's last, or earlier on a
	// machine slow enough for deviceReadEvery to pass before it.
	if want := regexp.MustCompile(`^epoch 1 step ([1-9]|[12][0-9]|3[0-2]): loss is NaN with learning rate 0.001: training diverged$`); !want.MatchString(err.Error()) {
		t.Errorf("error %q, want it to match %v", err, want)
	}
	if dev.reads != 1 {
		t.Errorf("%d reads of the totals, want training to stop at the first", dev.reads)
	}
}

// TestDeviceLoopStepFailure: a step that fails ends the epoch with an error
// naming the epoch and step. The read of the running totals after it is
// joined to it only when it says something new: an engine broken by a
// device error refuses that read with the same cause, which would only
// repeat it.
func TestDeviceLoopStepFailure(t *testing.T) {
	fault := errors.New("an illegal memory access was encountered")
	tests := []struct {
		name     string
		brokenBy error
		want     string
	}{
		{name: "the read repeats the cause", want: "epoch 1 step 3: host device: an illegal memory access was encountered"},
		{name: "the read fails otherwise", brokenBy: errors.New("totals lost"),
			want: "epoch 1 step 3: host device: an illegal memory access was encountered\nepoch 1 step 2: totals lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := shortConfig()
			dev := newHostDeviceLoop(t, cfg)
			dev.failAt, dev.fault, dev.brokenBy = 3, fault, tt.brokenBy
			tr, err := NewTrainer(cfg, dev, syntheticSet(1000, 1))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Fit(context.Background(), Hooks{})
			if err == nil || err.Error() != tt.want || !errors.Is(err, fault) {
				t.Errorf("Fit = %q, want %q wrapping the fault", err, tt.want)
			}
		})
	}
}
