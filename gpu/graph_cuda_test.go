//go:build cuda

package gpu

import (
	"math"
	"os"
	"strings"
	"testing"

	"mnist/model"
	"mnist/model/reference"
)

// Gorgonia's own CUDA tape machine running the model's graph (the same
// model.NewGraphEngine the CPU build uses, via newGorgoniaEngine) is checked
// against the plain-Go float64 reference, as the CPU graph is in model's
// tests: loss, log-probabilities, every gradient (read as probeAt does),
// then two Adam steps.

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

// TestGorgoniaGraphPlacement records which ops of the training program run
// on the GPU and which on the host, and the device↔host copies per step,
// from Gorgonia's own listing of the compiled program. With
// MNIST_PLACEMENT_OUT set, the full listing is written there.
func TestGorgoniaGraphPlacement(t *testing.T) {
	requireNativeGPU(t)
	e := newTestGraph(t, model.DefaultConfig())
	if w, ok := e.(gorgoniaEngine); ok {
		e = w.Engine
	}
	lister, ok := e.(interface{ Program() (string, error) })
	if !ok {
		t.Fatalf("%T does not list its program", e)
	}
	listing, err := lister.Program()
	if err != nil {
		t.Fatal(err)
	}
	if path := os.Getenv("MNIST_PLACEMENT_OUT"); path != "" {
		if err := os.WriteFile(path, []byte(listing), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The node map at the end lists every instruction once, by node.
	_, nodeMap, found := strings.Cut(listing, "Node:instructions map:")
	if !found {
		t.Fatalf("unexpected program listing:\n%s", listing)
	}
	var copies, onGPU, onHost int
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
	t.Logf("training step: %d ops on the GPU, %d on the host, %d device<->host copies", onGPU, onHost, copies)
	if onGPU == 0 {
		t.Errorf("no op of the training program runs on the GPU")
	}
}
