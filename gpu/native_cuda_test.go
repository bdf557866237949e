//go:build cuda

package gpu

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
	"mnist/model/modeltest"
	"mnist/model/reference"
)

// requireGPUEnv turns "no usable GPU" from a skip into a failure, for runs
// on a machine that is known to have one.
const requireGPUEnv = "MNIST_REQUIRE_GPU"

// requireNativeGPU skips the test when this machine has no usable GPU, or
// fails it if MNIST_REQUIRE_GPU=1.
func requireNativeGPU(t testing.TB) {
	t.Helper()
	unusable := func(why string) {
		t.Helper()
		if os.Getenv(requireGPUEnv) == "1" {
			t.Fatalf("%s=1 but there is no usable GPU: %s", requireGPUEnv, why)
		}
		t.Skipf("no usable GPU (%s); set %s=1 to make this a failure", why, requireGPUEnv)
	}
	devNode := "/dev/nvidia0 exists"
	if _, err := os.Stat("/dev/nvidia0"); err != nil {
		devNode = "no /dev/nvidia0"
	}
	if err := cu.Init(); err != nil {
		unusable("cuInit: " + cu.ErrorString(err) + "; " + devNode)
	}
	if n, err := cu.NumDevices(); err != nil || n == 0 {
		unusable("the driver lists no devices; " + devNode)
	}
}

func nativeTestConfig(batch int) model.Config {
	cfg := model.DefaultConfig()
	cfg.BatchSize = batch
	cfg.Seed = 9
	return cfg
}

// newTestNative opens the native backend on device 0, closed when the test
// ends.
func newTestNative(t testing.TB, cfg model.Config) model.Backend {
	t.Helper()
	b, err := newNativeBackend(0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// randomSet is n images of random pixels with random labels.
func randomSet(n int, seed uint64) *data.Set {
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &data.Set{Images: make([]byte, n*data.ImageSize), Labels: make([]byte, n)}
	for i := range s.Images {
		s.Images[i] = byte(rng.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = byte(rng.IntN(data.NumClasses))
	}
	return s
}

// Shared with model's tests.
var (
	learnableSet   = modeltest.LearnableSet
	referenceBatch = modeltest.ReferenceBatch
	maxRelErr      = modeltest.MaxRelErr
)

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// referenceHits counts the rows whose first largest log-probability is the
// label, like model.ScoreLogProbs.
func referenceHits(lp []float64, labels []int) int {
	hits, _ := model.ScoreLogProbs(lp, &data.Set{Labels: toBytes(labels)}, identity(len(labels)))
	return hits
}

func toBytes(v []int) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

const nativeTol = 1e-4

// TestNativeRejectsFloat64 needs no GPU: the dtype is checked first.
func TestNativeRejectsFloat64(t *testing.T) {
	cfg := nativeTestConfig(8)
	cfg.Dtype = tensor.Float64
	b, err := newNativeBackend(0, cfg)
	if err == nil {
		b.Close()
		t.Fatal("float64 accepted")
	}
	if !strings.Contains(err.Error(), "float32") {
		t.Errorf("error %q does not say float32 is needed", err)
	}
}

// TestNativeFailsCleanlyWithoutGPU: on a machine without a usable GPU the
// constructor returns an error (no panic, nothing left open).
func TestNativeFailsCleanlyWithoutGPU(t *testing.T) {
	if err := cu.Init(); err == nil {
		if n, err := cu.NumDevices(); err == nil && n > 0 {
			t.Skip("this machine has a GPU")
		}
	}
	b, err := newNativeBackend(0, nativeTestConfig(8))
	if err == nil {
		b.Close()
		t.Fatal("newNativeBackend succeeded without a usable GPU")
	}
	if !strings.HasPrefix(err.Error(), "native cuda: ") {
		t.Errorf("error %q does not say where it came from", err)
	}
	t.Logf("without a GPU: %v", err)
}

// TestNativeProbeMatchesReference compares one forward and backward pass on
// a partial batch (7 rows, batch size 8, a repeated image) with the float64
// reference on the same initial weights.
func TestNativeProbeMatchesReference(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(8)
	b := newTestNative(t, cfg)
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	set := randomSet(8, 3)
	idx := []int{5, 0, 7, 2, 2, 3, 6}
	x, labels := referenceBatch(set, idx)

	got, err := b.Probe(set, idx)
	if err != nil {
		t.Fatal(err)
	}
	want := reference.ForwardBackward(reference.Params(initial.Float64s()), x, labels)
	if e := math.Abs(got.Loss-want.Loss) / want.Loss; !(e <= nativeTol) {
		t.Errorf("loss %v, reference %v (rel err %.2g)", got.Loss, want.Loss, e)
	}
	if e := maxRelErr(got.LogProbs, want.LogProbs, 1); !(e <= nativeTol) {
		t.Errorf("log-probabilities differ, rel err %.2g", e)
	}
	for i := range want.Grads {
		// Relative to the tensor's largest gradient: tiny entries are all
		// rounding.
		if e := maxRelErr(got.Grads[i], want.Grads[i], maxAbs(want.Grads[i])); !(e <= nativeTol) {
			t.Errorf("%s gradient differs, rel err %.2g", model.ParamNames()[i], e)
		}
		if maxAbs(want.Grads[i]) == 0 {
			t.Errorf("%s: reference gradient is all zero; the test data checks nothing", model.ParamNames()[i])
		}
	}
	// A probe updates nothing.
	after, err := b.Params()
	if err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, after, initial)
}

// TestNativeStepsMatchReferenceAdam: the parameters start bit-identical to
// model.NewParams; each Step reports the batch's loss and hits from before
// its update (and the same loss as a Probe on the same weights); after two
// Steps (a partial batch, then a full one) the parameters match two updates
// of reference.Adam fed the GPU's own gradients, which checks the Adam kernel
// alone.
//
// On the learnable images they must also match the all-float64 reference,
// like the CPU backend's test. Not on the random images: a weight whose
// first gradient is tiny (|g| ≈ 1e-6, where Adam's sqrt(v) ≈ ε) has its
// update scaled by up to 1/ε, so float32 rounding of that gradient (5e-9 on
// an H100, 1e-7 of the tensor's largest) moves the weight by 1e-6, just over
// the tolerance; the gradients themselves are checked by
// TestNativeProbeMatchesReference.
func TestNativeStepsMatchReferenceAdam(t *testing.T) {
	requireNativeGPU(t)
	for _, c := range []struct {
		name     string
		set      *data.Set
		endToEnd bool
	}{{"learnable", learnableSet(8, 4), true}, {"random", randomSet(8, 4), false}} {
		t.Run(c.name, func(t *testing.T) { testStepsMatchReferenceAdam(t, c.set, c.endToEnd) })
	}
}

func testStepsMatchReferenceAdam(t *testing.T, set *data.Set, endToEnd bool) {
	cfg := nativeTestConfig(8)
	b := newTestNative(t, cfg)
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	start, err := b.Params()
	if err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, start, initial)

	newAdam := func() *reference.Adam {
		return reference.NewAdam(cfg.LearningRate, cfg.Beta1, cfg.Beta2, cfg.Epsilon)
	}
	w, optW := reference.Params(initial.Float64s()), newAdam()     // all float64
	own, optOwn := reference.Params(initial.Float64s()), newAdam() // fed the GPU's gradients
	var refGrads, gpuGrads []reference.Params
	for step, idx := range [][]int{{1, 3, 5, 7, 0, 2, 4}, {7, 6, 5, 4, 3, 2, 1, 0}} {
		x, labels := referenceBatch(set, idx)
		pass := reference.ForwardBackward(w, x, labels)
		probe, err := b.Probe(set, idx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := b.Step(set, idx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Loss != probe.Loss {
			t.Errorf("step %d: Step's loss %v differs from Probe's %v on the same weights", step+1, res.Loss, probe.Loss)
		}
		if e := math.Abs(res.Loss-pass.Loss) / pass.Loss; !(e <= nativeTol) {
			t.Errorf("step %d: loss %v, reference %v (rel err %.2g)", step+1, res.Loss, pass.Loss, e)
		}
		if wantHits := referenceHits(pass.LogProbs, labels); res.Hits != wantHits {
			t.Errorf("step %d: %d hits, reference %d", step+1, res.Hits, wantHits)
		}
		optW.Update(w, pass.Grads)
		optOwn.Update(own, reference.Params(probe.Grads))
		refGrads = append(refGrads, pass.Grads)
		gpuGrads = append(gpuGrads, reference.Params(probe.Grads))
	}
	after, err := b.Params()
	if err != nil {
		t.Fatal(err)
	}
	got := after.Float64s()
	for i := range w {
		if !after.Tensors[i].Shape().Eq(initial.Tensors[i].Shape()) {
			t.Errorf("%s has shape %v, want %v", model.ParamNames()[i], after.Tensors[i].Shape(), initial.Tensors[i].Shape())
		}
		for _, c := range []struct {
			what  string
			want  reference.Params
			check bool
		}{{"fed the GPU's gradients", own, true}, {"all float64", w, endToEnd}} {
			e := maxRelErr(got[i], c.want[i], 1e-2)
			t.Logf("%s after 2 Adam steps, reference %s: max rel err %.2g", model.ParamNames()[i], c.what, e)
			if c.check && !(e <= nativeTol) {
				j := worstIndex(got[i], c.want[i], 1e-2)
				t.Errorf("%s after 2 Adam steps differs from the reference %s, rel err %.2g; worst [%d]: initial %.9g, GPU %.9g, reference %.9g; "+
					"gradients (reference, GPU): step 1 %.4g, %.4g, step 2 %.4g, %.4g; largest step-1 gradient %.4g",
					model.ParamNames()[i], c.what, e, j, initial.Float64s()[i][j], got[i][j], c.want[i][j],
					refGrads[0][i][j], gpuGrads[0][i][j], refGrads[1][i][j], gpuGrads[1][i][j], maxAbs(refGrads[0][i]))
			}
		}
	}
}

// worstIndex is where maxRelErr finds its maximum.
func worstIndex(got, want []float64, floor float64) int {
	worst, at := -1.0, 0
	for i := range want {
		if d := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), floor); d > worst {
			worst, at = d, i
		}
	}
	return at
}

func assertParamsEqual(t *testing.T, got, want *model.Params) {
	t.Helper()
	for i := range want.Tensors {
		g, w := got.Tensors[i].Data().([]float32), want.Tensors[i].Data().([]float32)
		if !got.Tensors[i].Shape().Eq(want.Tensors[i].Shape()) || len(g) != len(w) {
			t.Fatalf("%s: shape %v, want %v", model.ParamNames()[i], got.Tensors[i].Shape(), want.Tensors[i].Shape())
		}
		for j := range w {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s[%d] = %v, want %v", model.ParamNames()[i], j, g[j], w[j])
			}
		}
	}
}

// TestNativeLearnsSyntheticDigits trains 2 epochs through model's Trainer
// (shuffled batches of 32, the last one partial) and expects a held-out set
// to be learnt. Evaluate must also agree exactly with scoring the Probe
// log-probabilities batch by batch.
func TestNativeLearnsSyntheticDigits(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(32)
	cfg.Epochs = 2
	b := newTestNative(t, cfg)
	tr, err := model.NewTrainer(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	history, err := tr.Fit(context.Background(), learnableSet(2000, 1), model.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || !(history[1].Loss < history[0].Loss) {
		t.Errorf("training loss did not fall over 2 epochs: %+v", history)
	}
	test := learnableSet(500, 2)
	m, err := b.Evaluate(test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out: accuracy %.4f, loss %.4f", m.Accuracy, m.Loss)
	if m.Images != 500 {
		t.Errorf("evaluated %d images, want 500", m.Images)
	}
	if m.Accuracy < 0.95 {
		t.Errorf("held-out accuracy %.4f after 2 epochs, want >= 0.95", m.Accuracy)
	}

	var hits int
	var loss float64
	for lo := 0; lo < test.Len(); lo += cfg.BatchSize {
		idx := identity(min(cfg.BatchSize, test.Len()-lo))
		for r := range idx {
			idx[r] += lo
		}
		p, err := b.Probe(test, idx)
		if err != nil {
			t.Fatal(err)
		}
		h, l := model.ScoreLogProbs(p.LogProbs, test, idx)
		hits += h
		loss += l
	}
	if want := float64(hits) / 500; m.Accuracy != want || m.Loss != loss/500 {
		t.Errorf("Evaluate gave accuracy %v loss %v; scoring Probe's log-probabilities gives %v and %v",
			m.Accuracy, m.Loss, want, loss/500)
	}
	if m.Confusion.Total() != 500 || m.Confusion.Correct() != hits {
		t.Errorf("confusion matrix counts %d images, %d right; want 500 and %d", m.Confusion.Total(), m.Confusion.Correct(), hits)
	}
}

// TestNativeDeterministic: two backends with one seed, fed the same
// batches, end with bit-identical parameters and report identical steps.
func TestNativeDeterministic(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(32)
	set := learnableSet(256, 5)
	run := func() (*model.Params, []model.StepResult) {
		b := newTestNative(t, cfg)
		var results []model.StepResult
		for step := 0; step < 10; step++ {
			lo := (step * 32) % set.Len()
			idx := identity(32 - step%3) // partial batches too
			for r := range idx {
				idx[r] = (idx[r] + lo) % set.Len()
			}
			res, err := b.Step(set, idx)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, res)
		}
		p, err := b.Params()
		if err != nil {
			t.Fatal(err)
		}
		return p, results
	}
	p1, r1 := run()
	p2, r2 := run()
	assertParamsEqual(t, p2, p1)
	for i := range r1 {
		if r1[i] != r2[i] {
			t.Errorf("step %d: %+v, then %+v", i+1, r1[i], r2[i])
		}
	}
}

// TestNativeAcrossThreads: the backend may be called from any goroutine.
// Each call here runs on a goroutine that stays locked to its OS thread until
// it exits, which ends that thread, so every call meets a fresh thread with
// no CUDA context current; the results must equal those of one goroutine.
func TestNativeAcrossThreads(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(16)
	set := learnableSet(64, 6)
	batches := [][]int{identity(16), identity(9), identity(16)}
	onThread := func(fn func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			fn()
		}()
		<-done
	}
	var hopped model.Backend
	var err error
	onThread(func() { hopped, err = newNativeBackend(0, cfg) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		onThread(func() { err = hopped.Close() })
		if err != nil {
			t.Errorf("Close on another thread: %v", err)
		}
	}()
	here := newTestNative(t, cfg)
	for i, idx := range batches {
		var got model.StepResult
		onThread(func() { got, err = hopped.Step(set, idx) })
		if err != nil {
			t.Fatalf("step %d on another thread: %v", i+1, err)
		}
		want, err := here.Step(set, idx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("step %d: %+v on fresh threads, %+v on one", i+1, got, want)
		}
	}
	var p1 *model.Params
	onThread(func() { p1, err = hopped.Params() })
	if err != nil {
		t.Fatal(err)
	}
	p2, err := here.Params()
	if err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, p1, p2)
}

// TestNativeInputErrors: bad batches are refused without harming the
// backend, and Close is idempotent and final.
func TestNativeInputErrors(t *testing.T) {
	requireNativeGPU(t)
	cfg := nativeTestConfig(4)
	b, err := newNativeBackend(0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := randomSet(6, 1)
	for name, idx := range map[string][]int{
		"empty": {}, "negative": {0, -1}, "past the end": {6}, "larger than the batch": {0, 1, 2, 3, 4},
	} {
		if _, err := b.Step(set, idx); err == nil {
			t.Errorf("%s batch accepted", name)
		}
	}
	bad := &data.Set{Images: make([]byte, 2*data.ImageSize), Labels: []byte{3, 10}}
	if _, err := b.Step(bad, []int{0}); err == nil || !strings.Contains(err.Error(), "label") {
		t.Errorf("label 10 not refused: %v", err)
	}
	if _, err := b.Evaluate(&data.Set{}); err == nil {
		t.Error("empty set evaluated")
	}
	if _, err := b.Step(set, []int{5, 4, 3}); err != nil {
		t.Fatalf("good batch after bad ones: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.Step(set, []int{0}); err == nil {
		t.Error("Step after Close succeeded")
	}
	if _, err := b.Params(); err == nil {
		t.Error("Params after Close succeeded")
	}
}

// BenchmarkNativeStep times one training step at batch 32.
func BenchmarkNativeStep(bm *testing.B) {
	requireNativeGPU(bm)
	cfg := nativeTestConfig(32)
	b := newTestNative(bm, cfg)
	set := learnableSet(1024, 1)
	idx := identity(32)
	if _, err := b.Step(set, idx); err != nil { // uploads the set
		bm.Fatal(err)
	}
	for i := 0; bm.Loop(); i++ {
		for r := range idx {
			idx[r] = (i*32 + r) % set.Len()
		}
		if _, err := b.Step(set, idx); err != nil {
			bm.Fatal(err)
		}
	}
}
