//go:build cuda

package gpu

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"mnist/data"
	"mnist/model"
	"mnist/model/reference"
)

// The Gorgonia engine (newGorgoniaEngine: the graph of device ops on
// Gorgonia's CUDA tape machine) is checked against the plain-Go float64
// reference, as the CPU graph is in model's tests: loss, log-probabilities,
// every gradient (read as probeAt does), then two Adam steps.

// newTestGraph returns a Gorgonia engine that is deliberately never closed.
// On the H100, Gorgonia's CUDA tests failed now and then with cuBLAS's
// NotInitialized when they ran after other Gorgonia machines of the same
// test binary had been closed, while the trainer (whose machines live until
// the process ends) never did. Gorgonia's engine creates its context current
// on the calling thread and destroys it on Close without unsetting it there;
// a later engine whose goroutine lands on that thread then fails to create
// its cuBLAS handle, an error Gorgonia ignores. Keeping every machine open
// for the life of the test binary, like the trainer, avoids that. (The
// InvalidContext failures of module loading had another cause, a thread
// switch inside NewTapeMachine; see onOneThread.)
func newTestGraph(t *testing.T, cfg model.Config) model.Engine {
	t.Helper()
	e, err := newGorgoniaEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestGorgoniaGraphMatchesReference(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(8)
	e := newTestGraph(t, cfg)
	prober := newTestGraph(t, probeConfig(cfg))
	set := learnableSet(8, 4)
	load(t, e, model.TrainSet, set)
	load(t, prober, model.TrainSet, set)
	w := reference.Params(state(t, e).Params.Float64s())
	o := cfg.Optimizer
	opt := reference.NewAdam(o.LearningRate, o.Beta1, o.Beta2, o.Epsilon)
	for step, idx := range twoSteps() {
		x, labels := referenceBatch(set, idx)
		want := reference.ForwardBackward(w, x, labels)
		got := probeAt(t, prober, state(t, e).Params, idx)
		if e := math.Abs(got.Loss-want.Loss) / want.Loss; !(e <= nativeTol) {
			t.Errorf("step %d: loss %v, reference %v (rel err %.2g)", step+1, got.Loss, want.Loss, e)
		}
		if e := maxRelErr(got.LogProbs, want.LogProbs, 1); !(e <= nativeTol) {
			t.Errorf("step %d: log-probabilities differ, rel err %.2g", step+1, e)
		}
		for i := range want.Grads {
			e := maxRelErr(got.Grads[i], want.Grads[i], maxAbs(want.Grads[i]))
			t.Logf("step %d: %s gradient max rel err %.2g", step+1, model.ParamNames()[i], e)
			if !(e <= nativeTol) {
				t.Errorf("step %d: %s gradient differs, rel err %.2g", step+1, model.ParamNames()[i], e)
			}
		}
		res, err := e.Step(idx)
		if err != nil {
			t.Fatalf("step %d: Step: %v", step+1, err)
		}
		if e := math.Abs(res.Loss-want.Loss) / want.Loss; !(e <= nativeTol) {
			t.Errorf("step %d: Step's loss %v, reference %v (rel err %.2g)", step+1, res.Loss, want.Loss, e)
		}
		opt.Update(w, want.Grads)
	}
	after := state(t, e)
	for i, got := range after.Params.Float64s() {
		e := maxRelErr(got, w[i], 1e-2)
		t.Logf("%s after 2 Adam steps: max rel err %.2g", model.ParamNames()[i], e)
		if !(e <= nativeTol) {
			t.Errorf("%s after 2 Adam steps differs from the reference, rel err %.2g", model.ParamNames()[i], e)
		}
	}
}

// placement counts, from Gorgonia's listing of a compiled program, the ops
// that run on the GPU and on the host and the device↔host copies of one
// run. The node map at the end of the listing lists every instruction once.
func placement(t *testing.T, listing string) (onGPU, onHost, copies int) {
	t.Helper()
	_, nodeMap, found := strings.Cut(listing, "Node:instructions map:")
	if !found {
		t.Fatalf("unexpected program listing:\n%s", listing)
	}
	for _, line := range strings.Split(nodeMap, "\n") {
		fields := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case strings.Contains(line, "memcpy("):
			copies++
			t.Logf("copy: %s", fields[len(fields)-1])
		case len(fields) >= 6 && strings.Contains(line, "]\t"):
			// node-map lines: index, id:, op, reads, writeTo, ...
			writeTo := fields[len(fields)-4]
			where := "host"
			if strings.HasPrefix(writeTo, "CPU") {
				onHost++
			} else {
				where = "GPU"
				onGPU++
			}
			t.Logf("%-4s %s -> %s", where, fields[len(fields)-6], writeTo)
		}
	}
	return onGPU, onHost, copies
}

// TestGraphProgramRunsOnGPU compiles the Gorgonia engine's graph as its
// tape machine does, which needs no GPU, and checks Gorgonia's own listing
// of the program: every op of a training step on the GPU (the six
// parameters, the batch, the first layer's product, the rows op, z1's
// gradient, the layer gradients and their five views, W1's gradient and
// the update), none on the host, no copy either way, and no allocation
// from the machine's arena (every output is the run's own buffer).
func TestGraphProgramRunsOnGPU(t *testing.T) {
	dg, err := buildDeviceGraph(&graphRun{batch: 32, layout: newParamLayout()})
	if err != nil {
		t.Fatal(err)
	}
	listing, err := dg.programListing()
	if err != nil {
		t.Fatal(err)
	}
	if path := os.Getenv("MNIST_PLACEMENT_OUT"); path != "" {
		if err := os.WriteFile(path, []byte(listing), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	onGPU, onHost, copies := placement(t, listing)
	t.Logf("training step: %d ops on the GPU, %d on the host, %d device<->host copies", onGPU, onHost, copies)
	if onGPU != 18 || onHost != 0 || copies != 0 {
		t.Errorf("%d ops on the GPU, %d on the host, %d copies; want 18, 0, 0", onGPU, onHost, copies)
	}
	instructions, _, _ := strings.Cut(listing, "\nArgs:")
	if n := strings.Count(instructions, "\tAlloc "); n != 0 {
		t.Errorf("the program allocates %d outputs from the machine's arena; want none", n)
	}
}

// TestGorgoniaGraphPlacement checks the program the engine's machine runs
// on a GPU, the same way.
func TestGorgoniaGraphPlacement(t *testing.T) {
	requireNativeGPU(t)
	e := newTestGraph(t, model.DefaultConfig())
	lister, ok := e.(interface{ Program() (string, error) })
	if !ok {
		t.Fatalf("%T does not list its program", e)
	}
	listing, err := lister.Program()
	if err != nil {
		t.Fatal(err)
	}
	if onGPU, onHost, copies := placement(t, listing); onHost != 0 || copies != 0 || onGPU == 0 {
		t.Errorf("%d ops on the GPU, %d on the host, %d copies; want all on the GPU, no copies", onGPU, onHost, copies)
	}
}

// stepOnly hides an engine's DeviceLoop verbs, so that the trainer drives
// it through Step.
type stepOnly struct{ model.Engine }

// TestEngineDeviceLoop trains the same short run twice on the GPU with each
// engine: through the DeviceLoop verbs (nothing copied per step) and
// through Step (results read back every step). The parameters must agree
// bit for bit, since the device does the same work in the same order, and
// the epoch losses to rounding (summed per row on the device, per batch
// mean on the host).
//
// The captured and persistent engines' own steps (capturedEngines)
// compute Adam's step size on the device and run cuBLAS on a handle of
// their own, or other kernels, so their two runs agree to rounding (1e-5)
// rather than bit for bit.
func TestEngineDeviceLoop(t *testing.T) {
	requireNativeGPU(t)
	for _, name := range EngineNames() {
		tol := 0.0
		if slices.Contains(capturedEngines(), name) {
			tol = 1e-5
		}
		t.Run(name, func(t *testing.T) { testDeviceLoop(t, testEngines()[name], tol) })
	}
}

func testDeviceLoop(t *testing.T, open opener, tol float64) {
	cfg := nativeTestConfig(32)
	cfg.Epochs = 2
	set := learnableSet(1000, 4) // 32 steps an epoch, the last partial
	train := func(e model.Engine) []model.EpochStats { return fitEngine(t, cfg, e, set) }
	dev, host := newTestEngine(t, open, cfg), newTestEngine(t, open, cfg)
	if _, ok := dev.(model.DeviceLoop); !ok {
		t.Fatalf("%T is not a model.DeviceLoop", dev)
	}
	devHist, hostHist := train(dev), train(stepOnly{host})
	for i := range devHist {
		if e := math.Abs(devHist[i].Loss-hostHist[i].Loss) / hostHist[i].Loss; !(e <= max(tol, 1e-12)) || (tol == 0 && devHist[i].Accuracy != hostHist[i].Accuracy) {
			t.Errorf("epoch %d: loss %v accuracy %v through DeviceLoop, %v %v through Step", i+1, devHist[i].Loss, devHist[i].Accuracy, hostHist[i].Loss, hostHist[i].Accuracy)
		}
	}
	a, b := state(t, dev).Params.Float64s(), state(t, host).Params.Float64s()
	for i := range a {
		if tol > 0 {
			if e := maxRelErr(a[i], b[i], maxAbs(b[i])); !(e <= tol) {
				t.Errorf("%s: DeviceLoop and Step differ by %.2g", model.ParamNames()[i], e)
			}
			continue
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("%s[%d]: %v through DeviceLoop, %v through Step", model.ParamNames()[i], j, a[i][j], b[i][j])
			}
		}
	}
}

// cancelAfter is a DeviceLoop engine that cancels a context after a given
// number of StepAt calls: an interruption in the middle of an epoch.
type cancelAfter struct {
	model.Engine
	model.DeviceLoop
	steps, at int
	cancel    context.CancelFunc
}

func (c *cancelAfter) StepAt(lo, hi int) error {
	err := c.DeviceLoop.StepAt(lo, hi)
	if c.steps++; c.steps == c.at {
		c.cancel()
	}
	return err
}

// TestEngineResumesExactly: with each engine, a run interrupted in the
// middle of its second epoch, its state moved to a fresh engine and its
// position to a fresh trainer, ends bit for bit where an uninterrupted run
// ends: the engine's device counters (the cudagraph engine's cursor and
// update count) follow SetOrder, SetState and the partial batches.
func TestEngineResumesExactly(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testResumesExactly)
}

func testResumesExactly(t *testing.T, open opener) {
	cfg := nativeTestConfig(32)
	cfg.Epochs = 3
	set := learnableSet(1000, 7) // 32 steps an epoch, the last partial
	fit := func(e model.Engine, ctx context.Context, pos *model.TrainState) (*model.Trainer, error) {
		tr, err := model.NewTrainer(cfg, e, set)
		if err != nil {
			t.Fatal(err)
		}
		if pos != nil {
			if err := tr.Restore(*pos); err != nil {
				t.Fatal(err)
			}
		}
		_, err = tr.Fit(ctx, model.Hooks{})
		return tr, err
	}
	whole := newTestEngine(t, open, cfg)
	if _, err := fit(whole, context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	first := newTestEngine(t, open, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopper := &cancelAfter{Engine: first, DeviceLoop: first.(model.DeviceLoop), at: 32 + 13, cancel: cancel}
	tr, err := fit(stopper, ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Fit = %v, want context.Canceled", err)
	}
	pos, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	second := newTestEngine(t, open, cfg)
	if err := second.SetState(state(t, first)); err != nil {
		t.Fatal(err)
	}
	if _, err := fit(second, context.Background(), &pos); err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, state(t, second).Params, state(t, whole).Params)
	assertOptimizerEqual(t, state(t, second).Optimizer, state(t, whole).Optimizer)
}

// BenchmarkEngineStepAt times a training step through DeviceLoop, as the
// trainer drives it (no copy per step), per engine at batch 32: the totals
// are read once at the end, inside the timing, so the time is the GPU's or
// the host's, whichever is slower, and not their sum. Against scripts/nullcuda (no GPU
// work) the time is the host's alone, and the driver calls a step makes
// are reported beside it (scripts/host-overhead.sh).
//
// gorgonia-uncaptured is the Gorgonia engine with its steps not captured:
// Gorgonia's tape machine runs the program every step, as it does for
// partial batches and wherever a capture fails.
func BenchmarkEngineStepAt(bm *testing.B) {
	requireNativeGPU(bm)
	set := learnableSet(1024, 1)
	order := identity(set.Len())
	engines := testEngines()
	names := append(EngineNames(), "gorgonia-uncaptured")
	engines["gorgonia-uncaptured"] = func(cfg model.Config) (model.Engine, error) {
		return openGorgonia(cfg, gorgoniaOptions{})
	}
	// What Adam's table of step sizes saves: the same steps with each
	// thread of the update working its step size out (adam_rate_at past
	// a table of none).
	for _, name := range []string{EngineCUDAGraph, EngineFused} {
		names = append(names, name+"-rates-worked-out")
		engines[name+"-rates-worked-out"] = func(cfg model.Config) (model.Engine, error) {
			e, err := engines[name](cfg)
			if err == nil {
				adamOf(bm, e).nrates = 0
			}
			return e, err
		}
	}
	for _, name := range names {
		bm.Run(name, func(bm *testing.B) {
			cfg := nativeTestConfig(32)
			e := newTestEngine(bm, engines[name], cfg)
			load(bm, e, model.TrainSet, set)
			dl := e.(model.DeviceLoop)
			if err := dl.SetOrder(order); err != nil {
				bm.Fatal(err)
			}
			steps := set.Len() / 32
			before, _ := driverCalls(bm)
			bm.ResetTimer()
			for i := 0; i < bm.N; i++ {
				lo := i % steps * 32
				if err := dl.StepAt(lo, lo+32); err != nil {
					bm.Fatal(err)
				}
			}
			reportCallsPerStep(bm, before, bm.N)
			if _, _, err := dl.Totals(); err != nil { // waits for the queued steps, timed too
				bm.Fatal(err)
			}
			bm.StopTimer()
		})
	}
}

// fitEngine trains e on set as cfg says and returns the epochs' figures.
func fitEngine(t *testing.T, cfg model.Config, e model.Engine, set *data.Set) []model.EpochStats {
	t.Helper()
	tr, err := model.NewTrainer(cfg, e, set)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tr.Fit(context.Background(), model.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return hist
}
